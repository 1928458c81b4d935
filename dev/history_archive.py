"""History for a reprocess, written straight into the archive bucket in the layout the pipeline's Archive step
writes (archive/topic=T/date=D/, one archive line a message: contracts/archive_line.py), and a mapping set
whose one file changed. Used by tests/integration/test_reprocess_e2e.py and bench/bench_reprocess.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from beam_pipeline.contracts.bucket_layout import ARCHIVE_PREFIX
from beam_pipeline.mapping.mapping_set import SHIPPED_FOLDER
from beam_pipeline.raw_message import RawMessage

# The mapping file a changed set differs in (the one that maps dev/synthetic.py's rows), and its change: one
# more `let`, which changes the mapping's content version and nothing it writes but the version's tag.
CHANGED_MAPPING = "synthea/patient.yaml"
_CHANGE = ("\nlet:\n", "\nlet:\n  revision: '2'\n")


def corrupt_line(topic: str) -> str:
    """A line of `topic`'s archive that no message can be read from: its field offset is not a number."""
    return json.dumps({"topic": topic, "partition": 0, "offset": "not-a-number", "payload": "x"})


def yesterday() -> date:
    """A whole UTC day in the past, as a reprocess's range is."""
    return (datetime.now(UTC) - timedelta(days=1)).date()


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def archived(
    topic: str, rows: Sequence[bytes], start_ms: int, spacing_ms: int, partitions: int = 2
) -> list[RawMessage]:
    """The rows as a consumer would have read them: spread over `partitions`, offsets counting up in each,
    one every `spacing_ms` from `start_ms`, keyed."""
    return [
        RawMessage(topic, i % partitions, i // partitions, start_ms + i * spacing_ms, f"k{i}".encode(), row)
        for i, row in enumerate(rows)
    ]


def archive_objects(messages: Sequence[RawMessage], per_object: int, name: str) -> dict[str, str]:
    """{object name: NDJSON body}: each message's archive line under its topic=T/date=D partition, at most
    `per_object` lines an object, in message order, the objects named <partition>/<name>-<n>.ndjson."""
    by_partition: dict[str, list[str]] = {}
    for message in messages:
        by_partition.setdefault(message.archive_partition(), []).append(message.archive_line())
    objects = {}
    for partition, lines in by_partition.items():
        for n, start in enumerate(range(0, len(lines), per_object)):
            chunk = lines[start : start + per_object]
            objects[f"{ARCHIVE_PREFIX}/{partition}/{name}-{n}.ndjson"] = "".join(line + "\n" for line in chunk)
    return objects


def with_line(body: str, index: int, line: str) -> str:
    """An NDJSON body with `line` inserted before its line `index` (0-based; past the end: appended)."""
    lines = body.splitlines()
    lines.insert(index, line)
    return "".join(each + "\n" for each in lines)


def upload(bucket: str, objects: Mapping[str, str]) -> None:
    """The objects into the bucket (the local stack's GCS emulator, through STORAGE_EMULATOR_HOST)."""
    from google.cloud import storage

    target = storage.Client(project="k2f-local").bucket(bucket)
    for name, body in objects.items():
        target.blob(name).upload_from_string(body, content_type="application/x-ndjson")


def changed_mapping_set(folder: Path) -> Path:
    """A copy of the shipped mapping set in `folder` whose CHANGED_MAPPING has one more `let`: the same
    resources under a new content version. Returns the folder, for --mappings."""
    shutil.copytree(SHIPPED_FOLDER, folder)
    path = folder / CHANGED_MAPPING
    text = path.read_text(encoding="utf-8")
    old, new = _CHANGE
    if old not in text:
        raise ValueError(f"{CHANGED_MAPPING} has no `let:` block to change")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def mapping_tag(location: str | Path | None = None) -> str:
    """The meta.tag code (mapping id @ content version) that a set's CHANGED_MAPPING writes (None: the
    shipped set's)."""
    from beam_pipeline.mapping.check import load_checked

    _, mapping_set = load_checked(str(location) if location else None)
    return next(m.tag_code for m in mapping_set.mappings if m.file.endswith(CHANGED_MAPPING))
