"""Dry run of the mapping, without Kafka: raw messages in, one JSON line out per message.

    python -m beam_pipeline.transform < messages.ndjson
    python -m beam_pipeline.transform --input include/sample_messages/01_original_readme_sample.json

Each input line is one raw message (a JSON object). Each output line, in input order, is one of
  {"status": "ok", "resources": [...]}
  {"status": "filtered", "reason": "..."}
  {"status": "error", "stage": "parse|validate|map", "code": "...", "detail": "..."}
The detail names fields, never their values. A summary goes to stderr; the exit code is 0 unless
--fail-on-error is given and some line was an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable
from typing import IO

from beam_pipeline.us_core import TransformConfig, transform
from beam_pipeline.us_core import terminology as t
from beam_pipeline.us_core.config import DEFAULT_MAX_MESSAGE_BYTES, parse_topic_types


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m beam_pipeline.transform",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", type=argparse.FileType("rb"), default=None, help="read this file (default: stdin)")
    p.add_argument("--topic", help="Kafka topic to pretend the messages came from (picks the mapper by topic)")
    p.add_argument(
        "--topic_types",
        help="topic=type pairs, comma-separated (e.g. synthea.conditions=condition): the type of --topic's messages",
    )
    p.add_argument(
        "--source_id_system",
        default=t.DEFAULT_SOURCE_ID_SYSTEM,
        help=f"identifier system of the source record Id (default {t.DEFAULT_SOURCE_ID_SYSTEM})",
    )
    p.add_argument("--filter_country", help="keep only messages whose COUNTRY equals this, e.g. US")
    p.add_argument("--filter_program_names", help="comma-separated PROGRAM_NAME allow-list")
    p.add_argument(
        "--max_message_bytes",
        type=int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help=f"larger messages are errors (default {DEFAULT_MAX_MESSAGE_BYTES})",
    )
    p.add_argument(
        "--no_structural_validation",
        action="store_true",
        help="skip the fhir.resources structural check (the US Core rule check always runs)",
    )
    p.add_argument("--fail-on-error", action="store_true", help="exit 1 when any message is an error")
    return p


def config_from(args: argparse.Namespace) -> TransformConfig:
    programs = args.filter_program_names
    return TransformConfig(
        source_id_system=args.source_id_system,
        max_message_bytes=args.max_message_bytes,
        filter_country=args.filter_country,
        filter_program_names=frozenset(p.strip() for p in programs.split(",")) if programs else None,
        structural_validation=not args.no_structural_validation,
        topic_types=parse_topic_types(args.topic_types),
    )


def run(lines: Iterable[bytes], out: IO[str], config: TransformConfig, topic: str | None = None) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in lines:
        raw = line.rstrip(b"\r\n")
        result = transform(raw, topic, config).to_json()
        counts[result["status"]] += 1
        out.write(json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    source = args.input or sys.stdin.buffer
    counts = run(source, sys.stdout, config_from(args), args.topic)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("ok", "filtered", "error"))
    print(f"{sum(counts.values())} messages: {summary}", file=sys.stderr)
    return 1 if args.fail_on_error and counts["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
