"""What a reprocess reads, as the reprocess command (beam_pipeline/reprocess.py) and the k2f_reprocess DAG
both take it: the archive of some topics over a [from, to) range of Kafka timestamps, or raw message files.
The DAG compares sources to refuse a second reprocess over an overlapping range."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from beam_pipeline.contracts.job_settings import comma_list


@dataclass(frozen=True)
class ReprocessSource:
    """The archive of `topics` over [start_ms, end_ms), or the files of `input_pattern`."""

    topics: tuple[str, ...] = ()
    start_ms: int | None = None
    end_ms: int | None = None
    input_pattern: str | None = None

    def overlaps(self, other: ReprocessSource) -> bool:
        """Would both write the same messages? Files have no range: the same pattern overlaps."""
        if self.input_pattern or other.input_pattern:
            return self.input_pattern == other.input_pattern
        if self.start_ms is None or self.end_ms is None or other.start_ms is None or other.end_ms is None:
            return True
        shared_topic = bool(set(self.topics) & set(other.topics))
        return shared_topic and self.start_ms < other.end_ms and other.start_ms < self.end_ms

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReprocessSource:
        return cls(
            topics=tuple(data.get("topics") or ()),
            start_ms=data.get("start_ms"),
            end_ms=data.get("end_ms"),
            input_pattern=data.get("input_pattern"),
        )


def parse_time(text: str, flag: str) -> int:
    """ISO 8601 date or time -> epoch milliseconds; a time without a zone is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag} takes an ISO 8601 date or time in UTC, e.g. 2026-12-01T06:00:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def reprocess_source(
    topics: str | None, start: str | None, end: str | None, input_pattern: str | None
) -> ReprocessSource:
    """The source named by --topics with --from and --to (the archive), or --input_pattern, never both.
    Raises ValueError naming the flag to fix."""
    topic_list = tuple(comma_list(topics))
    if input_pattern:
        if start or end:
            raise ValueError("--input_pattern reads files: leave out --from and --to, which select the archive")
        if len(topic_list) > 1:
            raise ValueError("with --input_pattern, --topics names at most one topic (the files' messages')")
        return ReprocessSource(topics=topic_list, input_pattern=input_pattern)
    if not topic_list or not start or not end:
        raise ValueError("name what to reprocess: --topics, --from and --to (the archive), or --input_pattern")
    start_ms, end_ms = parse_time(start, "--from"), parse_time(end, "--to")
    if end_ms <= start_ms:
        raise ValueError("--to must be after --from: the range is [from, to)")
    return ReprocessSource(topics=topic_list, start_ms=start_ms, end_ms=end_ms)
