"""The job's own retry of a row whose reference target has not arrived yet (docs/contracts.md, "Delivery").

A message whose write failed only because a conditional reference matched nothing (code
reference_not_found) goes to the retry topic instead of the error bucket, while its delivery attempt is
within the schedule: attempt 1 waits the first delay, attempt 2 the second, and so on. It carries the
replay headers (contracts/error_record.py: the next attempt, where it first came from) plus the time before
which it must not be written again. The job reads the retry topic, waits for that time, and writes the
message again; after the last delay its error record goes to the error bucket as before, and the replay
DAG takes it from there.

Each delay has its partition of the retry topic (attempt 1 partition 0, ...), so a partition holds messages
of one delay in publishing order and waiting for its head never holds back a shorter wait behind it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

HEADER_NOT_BEFORE = "k2f-not-before-ms"
DEFAULT_DELAYS = "10,60,300"
# A header is input: a wait longer than this is never taken, whatever it says.
MAX_DELAY_SECONDS = 3600
_DELAYS = re.compile(r"^\s*[0-9]{1,5}(\s*,\s*[0-9]{1,5})*\s*$")


class RetryScheduleError(ValueError):
    """--reference_retry_delays cannot be read; the message says what it takes."""


@dataclass(frozen=True)
class RetrySchedule:
    """Seconds to wait before each retry, by the failed delivery's attempt (1-based)."""

    delays: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> RetrySchedule:
        """From the flag's text, e.g. "10,60,300"."""
        if not _DELAYS.match(text or ""):
            raise RetryScheduleError(f"--reference_retry_delays takes comma-separated seconds, e.g. {DEFAULT_DELAYS}")
        delays = tuple(int(d) for d in text.split(","))
        if not all(1 <= d <= MAX_DELAY_SECONDS for d in delays):
            raise RetryScheduleError(f"--reference_retry_delays: each delay is 1 to {MAX_DELAY_SECONDS} seconds")
        return cls(delays)

    def delay_for(self, attempt: int) -> int | None:
        """How long a message whose delivery `attempt` failed waits, or None when the job stops retrying."""
        return self.delays[attempt - 1] if 1 <= attempt <= len(self.delays) else None

    @staticmethod
    def partition_for(attempt: int, partitions: int) -> int:
        """The retry topic's partition of a delay (shared round the partitions when there are fewer)."""
        return (attempt - 1) % max(partitions, 1)


def not_before_header(delay_seconds: int, now_ms: int | None = None) -> tuple[str, bytes]:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return HEADER_NOT_BEFORE, str(now + delay_seconds * 1000).encode()


def wait_seconds(headers: Iterable[tuple[str, bytes]], now_ms: int | None = None) -> float:
    """How long to wait before writing a message read from the retry topic: 0 without a readable header,
    never more than MAX_DELAY_SECONDS."""
    for name, value in headers:
        if name == HEADER_NOT_BEFORE:
            try:
                not_before = int(value.decode("ascii"))
            except (UnicodeDecodeError, ValueError, AttributeError):
                return 0.0
            now = int(time.time() * 1000) if now_ms is None else now_ms
            return min(max(not_before - now, 0), MAX_DELAY_SECONDS * 1000) / 1000
    return 0.0
