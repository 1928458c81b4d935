"""When to retry and how long to wait: pure functions and one frozen policy object.

Transient means the same request may succeed in a moment: 408, 409 (a concurrent write to the same
resource), 429 and the 5xx family (except 501 Not Implemented and 505 HTTP Version Not Supported, which
will not change), timeouts and connection errors. The client resends these within its budget.

A whole bundle refused with 401, 403 or 404 says nothing about its entries: the credentials, the
permissions or the store's URL are wrong, which an operator fixes. Resending at once would not help, so
the client does not, but the messages stay retryable, for a replay after the fix (the health DAG alerts on
them). Every other 4xx is the server's verdict on the request itself and is permanent; 401 gets its one
immediate retry from the auth layer (a refreshed token), not from here.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

# 5xx answers that describe the request rather than the server's state.
_PERMANENT_5XX = frozenset({501, 505})
# Whole-request answers about the deployment (credentials, IAM, the store's address), not the data: the
# client does not resend them, the messages stay retryable, and the health check alerts on any of them.
OPERATOR_FIXABLE_STATUSES = frozenset({401, 403, 404})
# The part of those the FHIR auth secret can fix, so the write step reads the secret again after one (it
# may have been rotated). Not 404: the store's address is a pipeline flag, not in the secret.
CREDENTIALS_REFUSED_STATUSES = frozenset({401, 403})


def is_retryable_status(status: int) -> bool:
    """Transient: the same request may succeed in a moment (the client resends it)."""
    if status in (408, 409, 429):
        return True
    return 500 <= status < 600 and status not in _PERMANENT_5XX


def request_failure_class(status: int) -> tuple[bool, bool]:
    """(retryable, transient) of a whole request (a bundle, a search) that failed with `status`."""
    if is_retryable_status(status):
        return True, True
    return status in OPERATOR_FIXABLE_STATUSES, False


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most `max_attempts` tries within `total_timeout` seconds of the first one.

    Waits grow exponentially from `initial_backoff` by `multiplier` up to `max_backoff`, with "equal
    jitter" (half fixed, half random) so that workers hit by the same outage spread out without any of them
    retrying immediately. A Retry-After from the server replaces the computed wait; if it asks for more time
    than the budget has left, the client stops at once with a retryable error instead of sleeping past it.
    """

    max_attempts: int = 5
    total_timeout: float = 120.0
    initial_backoff: float = 0.5
    max_backoff: float = 20.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.total_timeout < 0 or self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("retry times must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The jittered wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, attempt - 1))
        rng = rng or _RNG
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def next_delay(
        self,
        attempt: int,
        elapsed: float,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when the budget does not allow another."""
        if attempt >= self.max_attempts:
            return None
        delay = retry_after if retry_after is not None else self.backoff(attempt, rng)
        if elapsed + delay > self.total_timeout:
            return None
        return delay


# Module-level RNG only for jitter: no state that changes behaviour, and tests pass their own.
_RNG = random.Random()  # noqa: S311  (jitter, not cryptography)
