"""Retry policy and the structured error."""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beam_pipeline.fhir_store import errors
from beam_pipeline.fhir_store.retry import RetryPolicy, is_retryable_status, parse_retry_after, request_failure_class


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retryable(status):
    assert is_retryable_status(status)
    assert request_failure_class(status) == (True, True)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412, 413, 422, 501, 505])
def test_other_statuses_are_not_resent(status):
    assert not is_retryable_status(status)


@pytest.mark.parametrize(("status", "retryable"), [(401, True), (403, True), (404, True), (400, False), (422, False)])
def test_whole_request_failures_an_operator_fixes_stay_retryable(status, retryable):
    assert request_failure_class(status) == (retryable, False)


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=now) == pytest.approx(30.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0  # in the past: retry now
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None


@given(st.integers(1, 30), st.integers(0, 2**32))
def test_backoff_is_jittered_exponential_and_capped(attempt, seed):
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=20, multiplier=2)
    ceiling = min(20, 0.5 * 2 ** (attempt - 1))
    delay = policy.backoff(attempt, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_next_delay_stops_at_the_attempt_limit_and_the_time_budget():
    policy = RetryPolicy(max_attempts=3, total_timeout=10, initial_backoff=1, max_backoff=1)
    rng = random.Random(1)
    assert policy.next_delay(1, elapsed=0, rng=rng) is not None
    assert policy.next_delay(3, elapsed=0, rng=rng) is None  # attempts spent
    assert policy.next_delay(1, elapsed=9.9, rng=rng) is None  # the wait would overrun the budget


def test_retry_after_replaces_the_backoff_but_not_the_budget():
    policy = RetryPolicy(max_attempts=5, total_timeout=10, initial_backoff=0.1)
    assert policy.next_delay(1, elapsed=0, retry_after=4) == 4
    assert policy.next_delay(1, elapsed=0, retry_after=11) is None  # give up now rather than sleep past it


def test_policy_validation():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(multiplier=0.5)


def test_error_text_is_structured_and_pickles():
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invariant", "diagnostics": "value 'Jane' is bad"}],
    }
    err = errors.http_error(
        422,
        retryable=False,
        what="batch entry PUT Patient?identifier",
        outcome=outcome,
        endpoint="POST http://h/fhir",
        attempts=2,
    )
    text = str(err)
    assert "HTTP 422" in text and "permanent" in text and "error/invariant" in text and "2 attempt" in text
    # diagnostics may quote submitted data: they stay in operation_outcome, out of the text
    assert "Jane" not in text
    assert err.to_dict() == {
        "code": "http_error",
        "retryable": False,
        "detail": "batch entry PUT Patient?identifier failed with HTTP 422; issues: error/invariant",
        "http_status": 422,
        "operation_outcome": outcome,
        "attempts": 2,
        "endpoint": "POST http://h/fhir",
    }
    clone = pickle.loads(pickle.dumps(err))
    assert clone.to_dict() == err.to_dict()
    assert err.with_attempts(5).attempts == 5 and err.attempts == 2


def test_redact_url_drops_query_and_credentials():
    url = "https://user:pw@fhir.example/r4/Patient?identifier=urn:ssn|123-45-6789#x"
    assert errors.redact_url(url) == "https://fhir.example/r4/Patient"


def test_as_operation_outcome_only_accepts_outcomes():
    assert errors.as_operation_outcome({"resourceType": "OperationOutcome"}) == {"resourceType": "OperationOutcome"}
    assert errors.as_operation_outcome({"error": {"code": 429}}) is None
    assert errors.as_operation_outcome("<html>") is None
