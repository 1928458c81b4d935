"""The client's write path against the in-memory FHIR server (httpx.MockTransport): batching, outcomes in
order, idempotency, per-entry failures, retries and their budget, concurrency bounds."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from fhir_fakes import BASE, SYSTEM, item, patient

from beam_pipeline.fhir_store import RetryPolicy, WriteItem, errors


def _bundle_posts(server):
    return [r for r in server.log if r.method == "POST"]


def test_items_go_in_bundles_of_the_configured_size_and_come_back_in_order(server, make_client):
    client = make_client(bundle_size=4)
    outcomes = client.write([item(f"P{i}", key=("topic", 0, i)) for i in range(10)])
    assert [o.key for o in outcomes] == [("topic", 0, i) for i in range(10)]
    assert all(o.ok and o.status == 201 and o.created for o in outcomes)
    assert all(o.resource_type == "Patient" and o.resource_id and o.version_id == "1" for o in outcomes)
    assert all(o.location.startswith(f"Patient/{o.resource_id}/_history/") for o in outcomes)
    assert [len(r.body["entry"]) for r in _bundle_posts(server)] == [4, 4, 2]
    headers = _bundle_posts(server)[0].headers
    assert headers["content-type"] == "application/fhir+json;charset=utf-8"
    assert headers["prefer"] == "return=minimal"
    assert headers["accept"] == "application/fhir+json"


def test_redelivered_items_update_instead_of_duplicating(server, make_client):
    client = make_client()
    first = client.write([item(f"P{i}") for i in range(5)])
    again = client.write([item(f"P{i}", family="Renamed") for i in range(5)])
    assert len(server.patients()) == 5
    assert [o.status for o in again] == [200] * 5 and [o.version_id for o in again] == ["2"] * 5
    assert [o.resource_id for o in again] == [o.resource_id for o in first]
    assert {p["name"][0]["family"] for p in server.patients()} == {"Renamed"}


def test_conditional_create_never_overwrites(server, make_client):
    client = make_client(write_mode="conditional_create")
    client.write([item("P1")])
    outcome = client.write([item("P1", family="Changed")])[0]
    assert outcome.ok and outcome.status == 200 and not outcome.created
    assert server.patients()[0]["name"][0]["family"] == "Synthetic"


def test_create_mode_duplicates_like_the_original_sample(server, make_client):
    client = make_client(write_mode="create")
    client.write([item("P1")])
    client.write([item("P1")])
    assert len(server.patients()) == 2


def test_same_identity_twice_in_one_call_goes_to_a_later_bundle_and_the_later_message_wins(server, make_client):
    client = make_client(bundle_size=10)
    outcomes = client.write([item("P1", "First"), item("P2"), item("P1", "Second")])
    posts = _bundle_posts(server)
    assert [len(p.body["entry"]) for p in posts] == [2, 1]  # never twice in one bundle
    assert [o.status for o in outcomes] == [201, 201, 200]
    assert len(server.patients()) == 2
    p1 = next(p for p in server.patients() if p["identifier"][0]["value"] == "P1")
    assert p1["name"][0]["family"] == "Second"


def test_one_bad_entry_fails_alone_with_its_operation_outcome(server, make_client):
    client = make_client()
    bad = patient("BAD")
    bad["gender"] = "invalid"
    outcomes = client.write([item("P1"), WriteItem(bad, (SYSTEM, "BAD"), key="bad"), item("P2")])
    assert [o.ok for o in outcomes] == [True, False, True]
    err = outcomes[1].error
    assert (err.code, err.http_status, err.retryable, err.attempts) == ("http_error", 422, False, 1)
    assert err.operation_outcome["issue"][0]["code"] == "invariant"
    assert err.endpoint == f"POST {BASE}"
    assert "BAD" not in str(err) and "gender invalid" not in str(err)
    assert len(_bundle_posts(server)) == 1  # permanent: not retried


def test_invalid_items_fail_before_sending(server, make_client):
    client = make_client()
    outcomes = client.write([WriteItem({"no": "type"}, key="k"), item("P1")])
    assert outcomes[0].error.code == errors.INVALID_ITEM and outcomes[0].attempts == 0
    assert outcomes[1].ok
    assert len(_bundle_posts(server)[0].body["entry"]) == 1


def test_empty_write_sends_nothing(server, make_client):
    assert make_client().write([]) == []
    assert server.log == []


def _fail_first(n, status, headers=None, body=None):
    def hook(request, count):
        if request.method == "POST" and count <= n:
            return httpx.Response(status, headers=headers or {}, json=body)
        return None

    return hook


def test_503_then_success_is_retried_with_backoff(server, make_client, fake_time):
    server.on_request = _fail_first(2, 503)
    outcomes = make_client().write([item("P1"), item("P2")])
    assert all(o.ok and o.attempts == 3 for o in outcomes)
    assert len(fake_time.sleeps) == 2
    assert 0.5 <= fake_time.sleeps[0] <= 1 and 1 <= fake_time.sleeps[1] <= 2  # equal jitter of 1s, 2s


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(server, make_client, fake_time, status):
    server.on_request = _fail_first(1, status, headers={"Retry-After": "7"})
    outcome = make_client().write([item("P1")])[0]
    assert outcome.ok and outcome.attempts == 2
    assert fake_time.sleeps == [7.0]


def test_retry_after_beyond_the_budget_gives_up_at_once_retryably(server, make_client, fake_time):
    server.on_request = _fail_first(1, 429, headers={"Retry-After": "3600"})
    outcome = make_client().write([item("P1")])[0]
    assert not outcome.ok and outcome.error.retryable and outcome.error.http_status == 429
    assert fake_time.sleeps == []


def test_spent_budget_returns_retryable_errors_with_attempts(server, make_client, fake_time):
    outcome_body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "transient"}]}
    server.on_request = _fail_first(100, 500, body=outcome_body)
    client = make_client(retry=RetryPolicy(max_attempts=3, total_timeout=100, initial_backoff=1))
    outcomes = client.write([item("P1"), item("P2")])
    for o in outcomes:
        assert not o.ok and o.attempts == 3
        assert (o.error.code, o.error.http_status, o.error.retryable, o.error.attempts) == ("http_error", 500, True, 3)
        assert o.error.operation_outcome == outcome_body
    assert len(_bundle_posts(server)) == 3


def test_total_time_budget_bounds_retries(server, make_client, fake_time):
    server.on_request = _fail_first(100, 502)
    client = make_client(retry=RetryPolicy(max_attempts=100, total_timeout=10, initial_backoff=2, max_backoff=4))
    outcome = client.write([item("P1")])[0]
    assert outcome.error.retryable
    assert sum(fake_time.sleeps) <= 10


@pytest.mark.parametrize("status", [400, 405, 412, 422])
def test_other_client_errors_are_permanent_and_not_retried(server, make_client, fake_time, status):
    server.on_request = _fail_first(100, status)
    outcome = make_client(bundle_size=1).write([item("P1")])[0]
    assert not outcome.ok and not outcome.error.retryable and outcome.error.http_status == status
    assert fake_time.sleeps == [] and len(_bundle_posts(server)) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_bundle_refused_for_credentials_permissions_or_address_stays_retryable_without_resending(
    server, make_client, fake_time, status
):
    # An operator fixes these (IAM, the secret, the store's URL); the replay after the fix succeeds.
    server.on_request = _fail_first(100, status)
    outcomes = make_client().write([item("P1"), item("P2")])
    assert all(not o.ok and o.error.retryable and o.error.http_status == status for o in outcomes)
    assert fake_time.sleeps == [] and len(_bundle_posts(server)) == 1


def test_a_conflict_is_resent_and_stays_retryable_after_the_budget(server, make_client, fake_time):
    server.on_request = _fail_first(100, 409)
    outcome = make_client(bundle_size=1).write([item("P1")])[0]
    assert not outcome.ok and outcome.error.retryable and outcome.error.http_status == 409
    assert len(_bundle_posts(server)) == 4 and len(fake_time.sleeps) == 3
    server.on_request = _fail_first(len(server.log) + 1, 409)
    assert make_client(bundle_size=1).write([item("P1")])[0].ok


def test_a_bundle_rejected_as_a_whole_is_halved_until_the_bad_entry_stands_alone(server, make_client):
    # A server that validates the Bundle as one resource rejects all of it for one bad entry.
    def hook(request, _):
        if request.method != "POST":
            return None
        bundle = json.loads(request.content)
        if any(e["resource"].get("gender") == "invalid" for e in bundle["entry"]):
            return httpx.Response(
                422, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}
            )
        return None

    server.on_request = hook
    bad = patient("BAD")
    bad["gender"] = "invalid"
    items = [item(f"P{i}") for i in range(7)]
    items.insert(5, WriteItem(bad, (SYSTEM, "BAD"), key="bad"))
    outcomes = make_client().write(items)
    assert [o.ok for o in outcomes] == [True] * 5 + [False] + [True] * 2
    assert outcomes[5].error.http_status == 422 and outcomes[5].error.operation_outcome is not None
    assert len(server.patients()) == 7
    assert len(_bundle_posts(server)) <= 1 + 2 * 3  # log2(8) levels of halving


def test_split_can_be_switched_off(server, make_client):
    server.on_request = _fail_first(1, 400)
    outcomes = make_client(split_rejected_bundles=False).write([item("P1"), item("P2")])
    assert [o.error.http_status for o in outcomes] == [400, 400]
    assert len(_bundle_posts(server)) == 1


def test_only_the_transiently_failed_entries_are_sent_again(server, make_client, fake_time):
    failed_once: set[str] = set()

    def entry_status(entry):
        value = entry["resource"]["identifier"][0]["value"]
        if value in ("P1", "P3") and value not in failed_once:
            failed_once.add(value)
            return 503
        return None

    server.entry_status = entry_status
    outcomes = make_client().write([item(f"P{i}") for i in range(5)])
    assert all(o.ok for o in outcomes)
    assert [o.attempts for o in outcomes] == [1, 2, 1, 2, 1]
    posts = _bundle_posts(server)
    assert [len(p.body["entry"]) for p in posts] == [5, 2]
    assert [e["resource"]["identifier"][0]["value"] for e in posts[1].body["entry"]] == ["P1", "P3"]


def test_entry_level_transient_failure_past_the_budget_is_retryable(server, make_client):
    server.entry_status = lambda entry: 429
    outcome = make_client(retry=RetryPolicy(max_attempts=2, initial_backoff=0.1)).write([item("P1")])[0]
    assert outcome.error.retryable and outcome.error.http_status == 429 and outcome.attempts == 2
    assert outcome.error.operation_outcome["issue"][0]["code"] == "processing"


def test_timeouts_and_connection_errors_are_retried(server, make_client):
    calls = {"n": 0}
    handler = server

    def flaky(request):
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls["n"] == 2:
            raise httpx.ReadTimeout("slow", request=request)
        return handler(request)

    outcome = make_client(transport=httpx.MockTransport(flaky)).write([item("P1")])[0]
    assert outcome.ok and outcome.attempts == 3


def test_unreachable_store_ends_in_a_retryable_connection_error(make_client):
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    outcome = make_client(transport=httpx.MockTransport(refuse)).write([item("P1")])[0]
    err = outcome.error
    assert (err.code, err.retryable, err.http_status, err.attempts) == (errors.CONNECTION_ERROR, True, None, 4)
    assert err.endpoint == f"POST {BASE}"


def test_timeout_error_code(make_client):
    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    client = make_client(transport=httpx.MockTransport(slow), retry=RetryPolicy(max_attempts=1))
    assert client.write([item("P1")])[0].error.code == errors.TIMEOUT


def test_garbled_success_response_is_retryable(server, make_client):
    server.on_request = lambda request, n: httpx.Response(200, text="<html>proxy</html>") if n == 1 else None
    outcome = make_client().write([item("P1")])[0]
    assert outcome.ok and outcome.attempts == 2


def test_bundles_in_flight_are_bounded(server, make_client):
    server.delay = 0.02
    client = make_client(bundle_size=2, max_bundles_in_flight=3)
    outcomes = client.write([item(f"P{i}") for i in range(40)])
    assert all(o.ok for o in outcomes)
    assert 1 < server.max_in_flight <= 3
    assert len(_bundle_posts(server)) == 20
    stats = client.stats.snapshot()
    assert stats["bundles"] == 20 and stats["entries_ok"] == 40 and stats["entries_failed"] == 0


def test_client_is_usable_from_several_threads(server, make_client):
    client = make_client(bundle_size=3)
    results: dict[int, list] = {}

    def run(n):
        results[n] = client.write([item(f"T{n}-{i}") for i in range(10)])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o.ok for r in results.values() for o in r)
    assert len(server.patients()) == 40
