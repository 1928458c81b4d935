"""The error record: one JSON object per line in the error bucket.

This module is the one definition of the contract (docs/contracts.md, contract 4). The pipeline's DeadLetter step
writes these records and the Airflow replay DAG reads them, so a change here is a schema change: bump
SCHEMA_VERSION and keep `from_json` reading every older version.

Patient data may appear only in `payload`/`payload_base64`. `detail` names fields, never their values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

# The code of an unexpected exception in any stage (parse, map, write), turned into an error record so the
# stream carries on; the detail names the exception's type only.
INTERNAL_ERROR = "internal_error"

# 2: `source.key_base64`, the exact key when it is not UTF-8 (version 1 records read as they are).
SCHEMA_VERSION = 2

# Kafka headers of a replayed message (the replay DAG writes them, the pipeline reads them), so a message
# that fails again keeps its original coordinates, first failure time and a growing attempt count.
HEADER_ATTEMPT = "k2f-attempt"
HEADER_TOPIC = "k2f-original-topic"
HEADER_PARTITION = "k2f-original-partition"
HEADER_OFFSET = "k2f-original-offset"
HEADER_TIMESTAMP = "k2f-original-timestamp-ms"
HEADER_RECORD_ID = "k2f-error-record-id"
HEADER_FIRST_FAILURE = "k2f-first-failure-time"
HEADER_STAGE = "k2f-error-stage"
HEADER_CODE = "k2f-error-code"

# Headers are input like any other: values outside these bounds are ignored, never trusted.
KAFKA_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")  # Kafka's own rule for topic names
_DIGITS = re.compile(r"^-?[0-9]{1,19}$")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
MAX_ATTEMPT = 1_000_000
MAX_PARTITION = 2**31 - 1
MAX_OFFSET = 2**63 - 1
# ErrorRecord fields the job carries with a record and never writes.
_CARRIED = frozenset({"delivery", "job_retries"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class KafkaCoordinates:
    """Where the raw message came from; (topic, partition, offset) identifies it for good."""

    topic: str
    partition: int | None = None
    offset: int | None = None
    timestamp_ms: int | None = None
    key: str | None = None
    # The key's exact bytes, base64, when they are not UTF-8 (`key` then holds a readable rendering only).
    key_base64: str | None = None

    def key_bytes(self) -> bytes | None:
        """The Kafka key exactly as consumed (what a replay must send again)."""
        if self.key_base64 is not None:
            return base64.b64decode(self.key_base64)
        return self.key.encode("utf-8") if self.key is not None else None


def key_fields(key: bytes | None) -> dict[str, str]:
    """`key` for a UTF-8 key; for any other bytes a readable `key` plus the exact `key_base64`."""
    if key is None:
        return {}
    try:
        return {"key": key.decode("utf-8")}
    except UnicodeDecodeError:
        return {"key": key.decode("utf-8", "replace"), "key_base64": base64.b64encode(key).decode("ascii")}


@dataclass(frozen=True)
class ErrorRecord:
    stage: str
    code: str
    retryable: bool
    detail: str
    source: KafkaCoordinates
    payload: str | None = None
    payload_base64: str | None = None
    http_status: int | None = None
    operation_outcome: dict[str, Any] | None = None
    attempt: int = 1
    first_failure_time: str = ""
    last_failure_time: str = ""
    job_name: str = ""
    schema_version: int = SCHEMA_VERSION
    record_id: str = field(default="")
    # Where this delivery of the message was read (for a replay, the replay's own coordinates, not `source`):
    # what the pipeline settles once the record is written. Carried through the job, never written.
    delivery: KafkaCoordinates | None = field(default=None, compare=False, repr=False)
    # How often the job itself has already sent this delivery to its retry topic (contracts/reference_retry.py):
    # those are not attempts of the replay's count. Carried through the job, never written.
    job_retries: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.record_id:
            object.__setattr__(self, "record_id", _record_id(self.source, self.stage, self.attempt))

    def to_json(self) -> str:
        """One NDJSON line, keys sorted so equal records are equal bytes."""
        data = {k: v for k, v in asdict(self).items() if v is not None and k not in _CARRIED}
        data["source"] = {k: v for k, v in data["source"].items() if v is not None}
        return json_line(data)

    def raw_payload(self) -> bytes:
        """The original message bytes, exactly as consumed."""
        if self.payload_base64 is not None:
            return base64.b64decode(self.payload_base64)
        return (self.payload or "").encode("utf-8")

    def next_attempt(self, now: datetime | None = None) -> ErrorRecord:
        """The record as it stands after one more failed attempt (replay increments it)."""
        return replace(self, attempt=self.attempt + 1, last_failure_time=_iso(now), record_id="", delivery=None)


def json_line(data: dict[str, Any]) -> str:
    """One NDJSON line, keys sorted so equal data are equal bytes. UTF-8 text as is, unless a string holds
    a lone surrogate, which no UTF-8 file can: then every non-ASCII character is escaped, so the line
    (and the object it shares with other lines) can still be written."""
    line = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, sort_keys=True, separators=(",", ":"))
    return line


def utc_date(timestamp_ms: int | None) -> str | None:
    """YYYY-MM-DD of a Kafka timestamp, or None when it has none a calendar can name (year 10000, ...)."""
    if timestamp_ms is None:
        return None
    try:
        return (_EPOCH + timedelta(milliseconds=timestamp_ms)).strftime("%Y-%m-%d")
    except (OverflowError, ValueError):
        return None


def _iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _record_id(source: KafkaCoordinates, stage: str, attempt: int) -> str:
    # Deterministic, so a record written twice (a retried bundle) is recognisably the same record.
    ident = f"{source.topic}|{source.partition}|{source.offset}|{stage}|{attempt}"
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


def payload_fields(raw: bytes) -> dict[str, str]:
    """`payload` when the bytes are UTF-8 text, `payload_base64` otherwise, so nothing is lost."""
    try:
        return {"payload": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"payload_base64": base64.b64encode(raw).decode("ascii")}


def make_error_record(
    *,
    stage: str,
    code: str,
    retryable: bool,
    detail: str,
    raw: bytes,
    source: KafkaCoordinates,
    job_name: str = "",
    http_status: int | None = None,
    operation_outcome: dict[str, Any] | None = None,
    attempt: int = 1,
    first_failure_time: str | None = None,
    now: datetime | None = None,
) -> ErrorRecord:
    at = _iso(now)
    return ErrorRecord(
        stage=stage,
        code=code,
        retryable=retryable,
        detail=detail,
        source=source,
        http_status=http_status,
        operation_outcome=operation_outcome,
        attempt=attempt,
        first_failure_time=first_failure_time or at,
        last_failure_time=at,
        job_name=job_name,
        **payload_fields(raw),
    )


def from_json(line: str | bytes) -> ErrorRecord:
    """Parse one NDJSON line written by any schema version up to SCHEMA_VERSION."""
    data = json.loads(line)
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(f"unsupported error record schema_version {version!r}")
    known = set(ErrorRecord.__dataclass_fields__) - _CARRIED
    source_fields = set(KafkaCoordinates.__dataclass_fields__)
    source = KafkaCoordinates(**{k: v for k, v in data.pop("source").items() if k in source_fields})
    return ErrorRecord(source=source, **{k: v for k, v in data.items() if k in known})


def replay_headers(record: ErrorRecord, attempt: int | None = None) -> list[tuple[str, bytes]]:
    """The Kafka headers a replay of `record` carries: the next attempt (or `attempt`) and where it first
    came from."""
    source = record.source
    values = {
        HEADER_ATTEMPT: record.next_attempt().attempt if attempt is None else attempt,
        HEADER_TOPIC: source.topic,
        HEADER_PARTITION: source.partition,
        HEADER_OFFSET: source.offset,
        HEADER_TIMESTAMP: source.timestamp_ms,
        HEADER_RECORD_ID: record.record_id,
        HEADER_FIRST_FAILURE: record.first_failure_time or None,
        HEADER_STAGE: record.stage,
        HEADER_CODE: record.code,
    }
    return [(k, str(v).encode()) for k, v in values.items() if v is not None]


@dataclass(frozen=True)
class ReplayOrigin:
    """What a replayed message's headers say about its earlier failures."""

    attempt: int
    source: KafkaCoordinates
    first_failure_time: str | None


class _BadHeader(ValueError):
    pass


def _bounded_int(values: dict[str, str], name: str, low: int, high: int) -> int | None:
    if name not in values:
        return None
    text = values[name]
    if not _DIGITS.match(text) or not low <= int(text) <= high:
        raise _BadHeader(name)
    return int(text)


def replay_origin(
    headers: Iterable[tuple[str, bytes]], key: str | None = None, key_base64: str | None = None
) -> ReplayOrigin | None:
    """From a consumed message's headers; None for a first delivery, or when the topic, attempt, partition
    or offset header is out of range or malformed (the message's own coordinates then stand, and the error
    record can be written). An unusable timestamp or first failure time is dropped alone, so the attempt
    count still grows and the replay DAG's cap still stops a message that keeps failing."""
    values = {k: v.decode("utf-8", "replace") for k, v in headers if isinstance(k, str) and v is not None}
    if HEADER_ATTEMPT not in values or HEADER_TOPIC not in values:
        return None
    topic = values[HEADER_TOPIC]
    if not KAFKA_TOPIC.match(topic):
        return None
    try:
        attempt = _bounded_int(values, HEADER_ATTEMPT, 1, MAX_ATTEMPT) or 1
        partition = _bounded_int(values, HEADER_PARTITION, 0, MAX_PARTITION)
        offset = _bounded_int(values, HEADER_OFFSET, 0, MAX_OFFSET)
    except _BadHeader:
        return None
    try:
        timestamp = _bounded_int(values, HEADER_TIMESTAMP, -MAX_OFFSET, MAX_OFFSET)
    except _BadHeader:
        timestamp = None
    if timestamp is not None and utc_date(timestamp) is None:
        timestamp = None
    first_failure = values.get(HEADER_FIRST_FAILURE)
    if first_failure is not None and not _valid_time(first_failure):
        first_failure = None
    return ReplayOrigin(attempt, KafkaCoordinates(topic, partition, offset, timestamp, key, key_base64), first_failure)


def _valid_time(text: str) -> bool:
    if not _ISO_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        return False
    return True
