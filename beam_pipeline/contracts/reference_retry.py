"""The job's own retry of a row whose reference target has not arrived yet (docs/contracts.md, "Delivery").

A message whose write failed only because a conditional reference matched nothing (code
reference_not_found) goes to the retry topic instead of the error bucket, while the schedule has a delay
left for it: the first time the first delay, then the next, and so on. It carries the replay headers
(contracts/error_record.py: where it first came from, its first failure time) with its attempt unchanged,
so the replay DAG's attempt cap counts only the replays, plus how often the job has retried it and the
time before which it must not be written again. The job reads the retry topic, waits for that time, and
writes the message again; after the last delay its error record goes to the error bucket, and the replay
DAG takes it from there.

The delays grow (10 s to 10 min by default), so a row whose target comes late lands soon after it
whatever the wait so far. Each delay has its partition of the retry topic (the first partition 0, ...):
a partition holds messages of one delay in publishing order, and waiting for its head never holds back a
shorter wait behind it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from beam_pipeline.contracts.error_record import ErrorRecord, replay_headers

HEADER_NOT_BEFORE = "k2f-not-before-ms"
HEADER_JOB_RETRIES = "k2f-job-retries"
DEFAULT_DELAYS = "10,30,60,120,300,600"
# A header is input: a wait longer than this is never taken, whatever it says.
MAX_DELAY_SECONDS = 3600
MAX_RETRIES = 100
_DELAYS = re.compile(rf"^\s*[0-9]{{1,5}}(\s*,\s*[0-9]{{1,5}}){{0,{MAX_RETRIES - 1}}}\s*$")


class RetryScheduleError(ValueError):
    """--reference_retry_delays cannot be read; the message says what it takes."""


@dataclass(frozen=True)
class RetrySchedule:
    """Seconds to wait before each of the job's retries of a row."""

    delays: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> RetrySchedule:
        """From the flag's text, e.g. "10,30,60"."""
        if not _DELAYS.match(text or ""):
            raise RetryScheduleError(
                f"--reference_retry_delays takes comma-separated seconds (at most {MAX_RETRIES}), e.g. {DEFAULT_DELAYS}"
            )
        delays = tuple(int(d) for d in text.split(","))
        if not all(1 <= d <= MAX_DELAY_SECONDS for d in delays):
            raise RetryScheduleError(f"--reference_retry_delays: each delay is 1 to {MAX_DELAY_SECONDS} seconds")
        return cls(delays)

    def delay_for(self, retries_done: int) -> int | None:
        """How long a row the job has retried `retries_done` times waits now, or None: no retry left."""
        return self.delays[retries_done] if 0 <= retries_done < len(self.delays) else None

    @staticmethod
    def partition_for(retries_done: int, partitions: int) -> int:
        """The retry topic's partition of a delay (shared round the partitions when there are fewer)."""
        return retries_done % max(partitions, 1)


def retry_headers(record: ErrorRecord, delay_seconds: int, now_ms: int | None = None) -> list[tuple[str, bytes]]:
    """The headers of `record`'s message on the retry topic: the replay headers at the same attempt, one
    more job retry, and when it may be written again."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return [
        *replay_headers(record, attempt=record.attempt),
        (HEADER_JOB_RETRIES, str(record.job_retries + 1).encode()),
        (HEADER_NOT_BEFORE, str(now + delay_seconds * 1000).encode()),
    ]


def _int_header(headers: Iterable[tuple[str, bytes]], name: str) -> int | None:
    """The header `name` as an integer; None when it is absent or not one (a header is input)."""
    for key, value in headers:
        if key == name:
            try:
                return int(value.decode("ascii"))
            except (UnicodeDecodeError, ValueError, AttributeError):
                return None
    return None


def job_retries(headers: Iterable[tuple[str, bytes]]) -> int:
    """How often the job has retried a message it read: 0 without a readable header (a wrong one costs at
    most the retries it hides, never a loop: the schedule ends)."""
    count = _int_header(headers, HEADER_JOB_RETRIES)
    return count if count is not None and 0 <= count <= MAX_RETRIES else 0


def wait_seconds(headers: Iterable[tuple[str, bytes]], now_ms: int | None = None) -> float:
    """How long to wait before writing a message read from the retry topic: 0 without a readable header,
    never more than MAX_DELAY_SECONDS."""
    not_before = _int_header(headers, HEADER_NOT_BEFORE)
    if not_before is None:
        return 0.0
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return min(max(not_before - now, 0), MAX_DELAY_SECONDS * 1000) / 1000
