"""A running reprocess's progress, from its job's counters: one line about once a minute, as the reprocess
command logs it while it waits for its job and the k2f_reprocess DAG's wait_until_done logs it while it
waits on the triggerer (counts and a rate, never content)."""

from __future__ import annotations

from dataclasses import dataclass

from beam_pipeline.contracts.outcome import DEAD_LETTER_METRICS, SETTLED_OUTCOMES
from beam_pipeline.contracts.reprocess_summary import (
    DRY_RUN_NAMESPACE,
    FILTERED,
    NAMESPACE,
    WOULD_WRITE_MESSAGES,
    of,
    settled,
)

# How often a running reprocess logs its progress.
PROGRESS_SECONDS = 60.0


def failed(counters: dict[str, int]) -> int:
    """Error records so far (a dry run's would-fail counts)."""
    return sum(of(counters, DEAD_LETTER_METRICS).values()) + sum(
        of(counters, DRY_RUN_NAMESPACE, "would_fail.").values()
    )


def messages_done(counters: dict[str, int]) -> int:
    """Messages that have their outcome: settled by the write (or counted by a dry run), filtered, or failed.
    A run has either the write's counters or the dry run's, so both are added without asking which."""
    done = sum(settled(counters, outcome) for outcome in SETTLED_OUTCOMES)
    done += counters.get(f"{DRY_RUN_NAMESPACE}/{WOULD_WRITE_MESSAGES}", 0)
    return done + counters.get(FILTERED, 0) + failed(counters)


def progress_line(counters: dict[str, int], rate: float | None, over_s: float) -> str:
    """'reprocess progress: 1200 messages done of 1500 read, 20.0/s over the last 60 s, 3 failed'; the rate
    is left out when there is no earlier line to measure it from."""
    done, read = messages_done(counters), counters.get(f"{NAMESPACE}/messages", 0)
    speed = f"{rate:.1f}/s over the last {over_s:.0f} s" if rate is not None else "rate from the next line"
    return f"reprocess progress: {done} messages done of {read} read, {speed}, {failed(counters)} failed"


@dataclass
class ProgressMeter:
    """When a progress line is due, and the rate since the last one. The clock is the caller's (seconds,
    any origin), so a test drives it; a line is due every `every_s` on a fixed schedule: a late look does
    not push the next line back, and after a long gap one line is logged, not the missed ones."""

    every_s: float = PROGRESS_SECONDS
    _next_s: float | None = None
    _last: tuple[float, int] | None = None  # (time, messages done) of the last line

    def start(self, now: float) -> None:
        """The job was just submitted: nothing is done yet, the first line is due one period from now."""
        self._last, self._next_s = (now, 0), now + self.every_s

    def due(self, now: float) -> bool:
        return self._next_s is None or now >= self._next_s

    def line(self, counters: dict[str, int], now: float) -> str:
        """The progress line at `now`; the next one is due one period after this one was."""
        done = messages_done(counters)
        rate = over = None
        if self._last is not None and now > self._last[0]:
            over = now - self._last[0]
            rate = (done - self._last[1]) / over
        self._last = (now, done)
        self._next_s = now + self.every_s if self._next_s is None else self._next_s + self.every_s
        if self._next_s <= now:
            self._next_s = now + self.every_s
        return progress_line(counters, rate, over or 0.0)
