"""A running reprocess's progress line and its cadence, driven by a fake clock (contracts/reprocess_progress.py)."""

from __future__ import annotations

from beam_pipeline.contracts.reprocess_progress import ProgressMeter, messages_done, progress_line

COUNTERS = {
    "reprocess/messages": 1500,
    "write_to_fhir_store/messages_written": 1000,
    "write_to_fhir_store/messages_unchanged": 100,
    "write_to_fhir_store/messages_superseded": 50,
    "write_to_fhir_store/resources_written": 4000,  # resources: not messages, not counted as done
    "parse_and_validate/filtered": 40,
    "dead_letter/parse.invalid_json": 7,
    "dead_letter/reprocess.corrupt_archive_line": 3,
}


def _done(n: int) -> dict[str, int]:
    return {"reprocess/messages": n, "write_to_fhir_store/messages_written": n}


def test_messages_done_are_those_with_an_outcome_in_a_run_or_a_dry_run():
    assert messages_done(COUNTERS) == 1000 + 100 + 50 + 40 + 10
    dry = {"reprocess_dry_run/messages_would_write": 30, "reprocess_dry_run/would_fail.map.unknown_code": 2}
    assert messages_done({**dry, "parse_and_validate/filtered": 1}) == 33


def test_a_line_names_counts_and_a_rate_never_content():
    assert progress_line(COUNTERS, 20.0, 60.0) == (
        "reprocess progress: 1200 messages done of 1500 read, 20.0/s over the last 60 s, 10 failed"
    )
    assert (
        progress_line({}, None, 0.0)
        == "reprocess progress: 0 messages done of 0 read, rate from the next line, 0 failed"
    )


def test_a_line_is_due_once_a_minute_on_a_fixed_schedule():
    meter = ProgressMeter(60.0)
    # Looks every 15 s, a little late each time (each look takes time), for five minutes.
    logged = []
    for look in range(21):
        now = 1000.0 + look * 15.3
        if meter.due(now):
            logged.append(now)
            meter.line(_done(look), now)
    gaps = [b - a for a, b in zip(logged, logged[1:], strict=False)]
    assert len(logged) == 6 and all(60 <= gap < 60 + 15.3 for gap in gaps)  # the first look, then each minute


def test_after_a_long_gap_one_line_then_a_minute_again():
    meter = ProgressMeter(60.0)
    meter.start(0.0)
    assert not meter.due(59.0) and meter.due(60.0)
    meter.line(_done(10), 300.0)  # the runner did not answer for four minutes
    assert not meter.due(301.0) and not meter.due(359.0) and meter.due(360.0)


def test_the_rate_is_over_the_time_since_the_last_line():
    meter = ProgressMeter(60.0)
    first = meter.line(_done(100), 0.0)
    assert "rate from the next line" in first  # the trigger does not know when the job began
    assert "600 messages done of 600 read, 5.0/s over the last 100 s" in meter.line(_done(600), 100.0)
    started = ProgressMeter(60.0)
    started.start(0.0)  # the command submitted the job: nothing was done then
    assert "2.0/s over the last 60 s" in started.line(_done(120), 60.0)
