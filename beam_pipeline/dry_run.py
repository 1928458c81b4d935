"""Dry run of the mapping, without Kafka: raw messages in, one JSON line out per message.

    python -m beam_pipeline.dry_run < messages.ndjson
    python -m beam_pipeline.dry_run --input include/sample_messages/01_original_readme_sample.json
    python -m beam_pipeline.dry_run --mappings my_mappings/ --input my_messages.ndjson
    python -m beam_pipeline.dry_run --profile_validation warn < messages.ndjson

Each input line is one raw message (a JSON object). Each output line, in input order, is one of
  {"status": "ok", "resources": [...]}
  {"status": "filtered", "reason": "..."}
  {"status": "error", "stage": "parse|validate|map", "code": "...", "detail": "..."}
When the resources break a profile they claim (--profile_validation warn or enforce, the default), the
line also has "issues": [{"resource": 0, "profile": "us-core-patient", "path": "Patient.name[0]",
"key": "us-core-6", "severity": "error", "detail": "..."}], one per issue; with enforce an error among
them makes the line the error validate/profile_violation.
The detail names fields, never their values. A summary goes to stderr; the exit code is 0 unless
--fail-on-error is given and some line was an error, and 2 when the mapping set does not load (the
message names the file, the line and the fix).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable
from typing import IO, Any

from beam_pipeline.contracts.job_settings import PROFILE_VALIDATION_OFF
from beam_pipeline.mapping.feed import MappingError
from beam_pipeline.us_core import Outcome, TransformConfig, transform
from beam_pipeline.us_core.config import DEFAULT_MAX_MESSAGE_BYTES, add_mapping_flags, config_from_flags


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m beam_pipeline.dry_run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", type=argparse.FileType("rb"), default=None, help="read this file (default: stdin)")
    p.add_argument("--topic", help="Kafka topic to pretend the messages came from (picks the mapper by topic)")
    add_mapping_flags(p)
    p.add_argument(
        "--max_message_bytes",
        type=int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help=f"larger messages are errors (default {DEFAULT_MAX_MESSAGE_BYTES})",
    )
    p.add_argument("--fail-on-error", action="store_true", help="exit 1 when any message is an error")
    return p


def config_from(args: argparse.Namespace) -> TransformConfig:
    return config_from_flags(args, max_message_bytes=args.max_message_bytes)


def output_line(outcome: Outcome) -> dict[str, Any]:
    """The outcome's JSON, with the profile issues of its resources when there are any."""
    line = outcome.to_json()
    issues = getattr(outcome, "issues", ())
    if issues:
        line["issues"] = [found.to_json() for found in issues]
    return line


def run(lines: Iterable[bytes], out: IO[str], config: TransformConfig, topic: str | None = None) -> Counter[str]:
    """Counts per status, and per severity of profile issues (`issues.error`, `issues.warning`)."""
    counts: Counter[str] = Counter()
    for line in lines:
        raw = line.rstrip(b"\r\n")
        result = output_line(transform(raw, topic, config))
        counts[result["status"]] += 1
        counts.update(f"issues.{found['severity']}" for found in result.get("issues", ()))
        out.write(json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    source = args.input or sys.stdin.buffer
    try:
        config = config_from(args)
    except MappingError as exc:
        # The file, the line and the fix; nothing of any message.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = run(source, sys.stdout, config, args.topic)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("ok", "filtered", "error"))
    if config.profile_validation != PROFILE_VALIDATION_OFF:
        summary += f"; profile issues: {counts['issues.error']} errors, {counts['issues.warning']} warnings"
    messages = sum(counts[s] for s in ("ok", "filtered", "error"))
    print(f"{messages} messages: {summary}", file=sys.stderr)
    return 1 if args.fail_on_error and counts["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
