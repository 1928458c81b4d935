"""What the pipeline writes beside each offset it commits, and the Airflow side reads back.

The pipeline commits its consumer group's offsets itself (beam_pipeline/transforms/commit_offsets.py), one
topic-partition at a time, up to the highest offset below which every message has settled. Kafka keeps a
short metadata string with each committed offset; ours says how far the job has read, how many messages it
holds unsettled and how many it settled, so the health DAG can show messages in flight next to the lag and
the drain DAG can prove nothing was left behind. The string names a job and counts, never message content.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

VERSION = 1
# Kafka's broker refuses metadata over offset.metadata.max.bytes (4096 by default); ours stays far below.
MAX_BYTES = 1024


@dataclass(frozen=True)
class CommitMetadata:
    """The committing job's view of one partition when it committed."""

    job: str
    # The offset after the highest one the job has read (the committed offset when nothing is in flight).
    read: int
    # Messages read and not yet settled (stored, filtered or dead-lettered, and archived).
    in_flight: int
    # Messages this job settled on the partition since it started.
    settled: int
    # Whether the job had been asked to drain (it stops taking new messages and lets the rest settle).
    draining: bool
    at_ms: int
    v: int = VERSION

    def encode(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return text if len(text.encode()) <= MAX_BYTES else json.dumps({"v": VERSION, "job": "", "read": self.read})


def decode(text: str | None) -> CommitMetadata | None:
    """The metadata of a committed offset, or None when it is absent or not ours (another committer's)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != VERSION:
            return None
        return CommitMetadata(
            job=str(data["job"]),
            read=int(data["read"]),
            in_flight=int(data["in_flight"]),
            settled=int(data["settled"]),
            draining=bool(data["draining"]),
            at_ms=int(data["at_ms"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
