"""A consumed message that failed a step: where it first came from, and its error record.

A replayed message carries the coordinates, attempt count and first failure time of its first delivery in
its replay headers (contracts/error_record.py defines them); its error record continues that record. The
headers are input like any other, so reading them never raises: a message whose headers cannot be read
stands for itself. A step reads them once per message (message_origin) and hands the result on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from beam_pipeline.contracts.error_record import (
    ErrorRecord,
    ReplayOrigin,
    key_fields,
    make_error_record,
    replay_origin,
)
from beam_pipeline.contracts.reference_retry import job_retries

if TYPE_CHECKING:
    from beam_pipeline.raw_message import RawMessage


def message_origin(message: RawMessage) -> ReplayOrigin:
    """The first delivery this message continues: its replay headers' origin, or the message itself."""
    try:
        origin = replay_origin(message.headers, **key_fields(message.key))
    except Exception:  # noqa: BLE001  (headers are input: a record about the message beats none)
        origin = None
    return origin if origin is not None else ReplayOrigin(1, message.coordinates, None)


def origin_fields(origin: ReplayOrigin) -> dict[str, Any]:
    """The source, attempt and first failure time make_error_record takes (no first failure time for a
    first delivery: the record's own failure time is its first)."""
    fields: dict[str, Any] = {"source": origin.source, "attempt": origin.attempt}
    if origin.attempt != 1 or origin.first_failure_time is not None:
        fields["first_failure_time"] = origin.first_failure_time
    return fields


def error_record(
    message: RawMessage,
    *,
    stage: str,
    code: str,
    retryable: bool,
    detail: str,
    job_name: str,
    http_status: int | None = None,
    operation_outcome: dict[str, Any] | None = None,
    origin: ReplayOrigin | None = None,
) -> ErrorRecord:
    """The error record about this message: its payload, the source and attempt it continues (`origin`,
    when the caller has read it already), and where this delivery was read (what the pipeline settles)."""
    record = make_error_record(
        stage=stage,
        code=code,
        retryable=retryable,
        detail=detail,
        raw=message.value,
        **origin_fields(origin or message_origin(message)),
        job_name=job_name,
        http_status=http_status,
        operation_outcome=operation_outcome,
    )
    retried = job_retries(message.headers) if message.headers else 0
    return replace(record, delivery=message.coordinates, job_retries=retried)
