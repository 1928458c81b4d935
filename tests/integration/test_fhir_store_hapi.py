"""The FHIR store client against the real local HAPI FHIR JPA server (dev/services/hapi.sh).

Every test writes under its own identifier system (a UUID in it), so reruns never see earlier data, and
counts with `Patient?identifier=<system>|&_summary=count`. Faults, an outage included, come from
dev/fault_proxy.py in front of HAPI.
"""

from __future__ import annotations

import threading
import time

import pytest

from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, RetryPolicy, WriteItem, bundles, errors
from dev.fault_proxy import FaultProxy
from dev.fhir_samples import identifier_of, unique_system, us_core_patient
from dev.local_stack import wait_for

pytestmark = pytest.mark.integration


def _items(system: str, n: int, start: int = 0, family: str | None = None) -> list[WriteItem]:
    out = []
    for i in range(start, start + n):
        resource = us_core_patient(system, i, family=family)
        out.append(WriteItem(resource, identifier_of(resource), key=("test-topic", 0, i)))
    return out


def _count(client: FhirStoreClient, system: str) -> int:
    return client.count("Patient", {"identifier": f"{system}|"})


@pytest.fixture(scope="module")
def hapi(env) -> str:
    base = env["FHIR_BASE_URL"]
    with FhirStoreClient(FhirStoreConfig(base_url=base)) as client:
        report = client.check(retry=RetryPolicy(max_attempts=3, total_timeout=20))
    if not report.reachable:
        pytest.fail(f"HAPI is not reachable at {base}: run `make up` (problems: {report.problems})")
    return base


@pytest.fixture
def client(hapi):
    with FhirStoreClient(FhirStoreConfig(base_url=hapi, bundle_size=100, max_bundles_in_flight=4)) as c:
        yield c


def _validation_on(client: FhirStoreClient) -> bool:
    """Does HAPI enforce US Core? A Patient without gender claims the profile but breaks it."""
    system = unique_system("probe")
    probe = us_core_patient(system, 0)
    del probe["gender"]
    return not client.write([WriteItem(probe, identifier_of(probe))])[0].ok


def test_capability_check_sees_an_r4_hapi(client):
    report = client.check()
    assert report.ok, report.problems
    assert report.fhir_version.startswith("4.0") and "HAPI" in (report.software or "")


def test_patients_in_several_bundles_land_and_sending_them_again_leaves_as_many(client):
    system = unique_system("it-many")
    n = 250  # three bundles of the fixture's 100, in flight together
    items = _items(system, n)
    first = client.write(items)
    assert all(o.ok for o in first), [str(o.error) for o in first if not o.ok][:3]
    assert {o.status for o in first} == {201}
    assert [o.key for o in first] == [i.key for i in items]
    assert _count(client, system) == n

    again = client.write(_items(system, n))  # a redelivery of every message
    assert all(o.ok for o in again)
    assert {o.status for o in again} == {200}
    assert [o.resource_id for o in again] == [o.resource_id for o in first]
    assert _count(client, system) == n

    changed = client.write(_items(system, 5, family="Renamed"))  # a replay with newer data updates in place
    assert [o.version_id for o in changed] == ["2"] * 5
    found = client.search_by_identifier("Patient", system, "P000003")
    assert [r["name"][0]["family"] for r in found] == ["Renamed"]
    assert _count(client, system) == n


def test_repeated_identity_in_one_call_keeps_message_order(client):
    system = unique_system("it-order")
    first, second = us_core_patient(system, 1, family="Older"), us_core_patient(system, 1, family="Newer")
    outcomes = client.write([WriteItem(first, identifier_of(first)), WriteItem(second, identifier_of(second))])
    assert [o.status for o in outcomes] == [201, 200]
    assert client.search_by_identifier("Patient", system, "P000001")[0]["name"][0]["family"] == "Newer"
    assert _count(client, system) == 1


def test_conditional_create_and_create_modes(hapi):
    system = unique_system("it-modes")
    with FhirStoreClient(FhirStoreConfig(base_url=hapi, write_mode="conditional_create")) as c:
        assert [o.status for o in c.write(_items(system, 3))] == [201] * 3
        assert [o.status for o in c.write(_items(system, 3, family="Ignored"))] == [200] * 3
        assert _count(c, system) == 3
    with FhirStoreClient(FhirStoreConfig(base_url=hapi, write_mode="create")) as c:
        c.write(_items(system, 3))  # the original sample's behaviour: duplicates
        assert _count(c, system) == 6


def test_one_invalid_entry_fails_alone_with_its_operation_outcome(client):
    if not _validation_on(client):
        pytest.skip("HAPI runs without US Core validation; start it with HAPI_VALIDATE_US_CORE=true")
    system = unique_system("it-invalid")
    items = _items(system, 10)
    del items[4].resource["gender"]  # US Core requires it
    outcomes = client.write(items)
    assert [o.ok for o in outcomes] == [True] * 4 + [False] + [True] * 5
    err = outcomes[4].error
    assert not err.retryable and err.code == errors.HTTP_ERROR
    assert 400 <= err.http_status < 500
    assert err.operation_outcome["resourceType"] == "OperationOutcome"
    assert any("gender" in issue.get("diagnostics", "") for issue in err.operation_outcome["issue"])
    # The server's diagnostics stay inside operation_outcome, out of the error's text.
    assert not any(issue.get("diagnostics", "") in str(err) for issue in err.operation_outcome["issue"])
    assert outcomes[4].key == ("test-topic", 0, 4)
    assert _count(client, system) == 9


@pytest.mark.parametrize(("status", "retry_after"), [(429, "2"), (503, "2")])
def test_retry_after_from_the_proxy_is_honoured(hapi, status, retry_after):
    system = unique_system(f"it-{status}")
    with FaultProxy(hapi.rsplit("/fhir", 1)[0]) as proxy:
        config = FhirStoreConfig(base_url=proxy.url + "/fhir", bundle_size=25, max_bundles_in_flight=1)
        with FhirStoreClient(config) as c:
            proxy.inject(status, count=2, retry_after=retry_after)
            started = time.monotonic()
            outcomes = c.write(_items(system, 50))
            elapsed = time.monotonic() - started
            assert all(o.ok for o in outcomes)
            assert [o.attempts for o in outcomes] == [3] * 25 + [1] * 25
            assert elapsed >= 4.0  # two waits of the server's 2 s, not the client's sub-second backoff
            statuses = [s.status for s in proxy.seen if s.method == "POST"]
            assert statuses == [status, status, 200, 200]
            assert _count(c, system) == 50


def test_retry_budget_spent_behind_the_proxy_is_a_retryable_error(hapi):
    system = unique_system("it-budget")
    with FaultProxy(hapi.rsplit("/fhir", 1)[0]) as proxy:
        proxy.inject(503, count=10, retry_after="1")
        config = FhirStoreConfig(base_url=proxy.url + "/fhir", retry=RetryPolicy(max_attempts=3, total_timeout=30))
        with FhirStoreClient(config) as c:
            outcome = c.write(_items(system, 1))[0]
        assert not outcome.ok and outcome.attempts == 3
        err = outcome.error
        assert (err.code, err.http_status, err.retryable, err.attempts) == (errors.HTTP_ERROR, 503, True, 3)
        assert err.operation_outcome["issue"][0]["code"] == "transient"
        assert err.endpoint == f"POST {proxy.url}/fhir"


def test_a_store_down_mid_run_gives_retries_then_success_or_a_retryable_error(hapi):
    # The store goes away behind a proxy (connections dropped unanswered, the first bundle applied and its
    # answer lost), which costs seconds where a real HAPI stop and restart costs a minute and more with US
    # Core validation; the pipeline end-to-end test's outage goes through the same proxy, the store simply
    # unreachable.
    system = unique_system("it-outage")
    patient_count = 600
    patient_retry = RetryPolicy(max_attempts=500, total_timeout=900, initial_backoff=0.5, max_backoff=5)
    outcomes: list = []
    with FaultProxy(hapi.removesuffix("/fhir")) as proxy:
        store = proxy.url + "/fhir"
        config = FhirStoreConfig(base_url=store, bundle_size=50, max_bundles_in_flight=2, retry=patient_retry)
        with FhirStoreClient(config) as writer:
            thread = threading.Thread(target=lambda: outcomes.extend(writer.write(_items(system, patient_count))))
            thread.start()
            # Down once some bundles have landed and others are still to come.
            wait_for(lambda: writer.stats.snapshot()["entries_ok"] >= 100, 300, "the first bundles")
            proxy.go_down()

            # With the store down, a client with a small budget gives up with a retryable error.
            small = FhirStoreConfig(base_url=store, retry=RetryPolicy(max_attempts=3, total_timeout=10))
            with FhirStoreClient(small) as impatient:
                lost = impatient.write(_items(unique_system("it-outage-small"), 3))
            assert all(not o.ok and o.error.retryable and o.attempts == 3 for o in lost)
            assert {o.error.code for o in lost} <= {errors.CONNECTION_ERROR, errors.TIMEOUT}

            wait_for(lambda: writer.stats.snapshot()["retries"] >= 2, 120, "the writer to retry")
            proxy.come_back()
            thread.join(timeout=900)
            assert not thread.is_alive()
    assert len(outcomes) == patient_count
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes if not o.ok][:3]
    assert max(o.attempts for o in outcomes) > 1
    with FhirStoreClient(FhirStoreConfig(base_url=hapi)) as c:
        # The bundle HAPI applied before its answer was lost was sent again: still one Patient each.
        assert _count(c, system) == patient_count


# -- issue 10: identifiers of any shape, older never overwrites newer -------------------------------------

ODD_VALUES = ["a|b", "a&b=c", "a#b", "a?b", "50%off", "%25", "a/b/../c", "with space", "a,b", "a$b", "a\\b", "Zoë-名字"]


def _patient_with(system: str, value: str, family: str = "Testperson") -> dict:
    resource = us_core_patient(system, 0, family=family)
    resource["identifier"] = [{"system": system, "value": value}]
    return resource


def test_identifiers_of_any_shape_write_once_and_redelivery_finds_them(client):
    system = unique_system("it-odd") + "/odd$sys,tem"  # a URI: `|` has no place in a system
    items = [WriteItem(_patient_with(system, v), (system, v), key=v) for v in ODD_VALUES]
    first = client.write(items)
    assert all(o.ok and o.status == 201 for o in first), [str(o.error) for o in first if not o.ok]
    again = client.write(items)  # a redelivery: each conditional update must find its own Patient
    assert all(o.ok and o.status == 200 for o in again), [str(o.error) for o in again if not o.ok]
    assert [o.resource_id for o in again] == [o.resource_id for o in first]
    for value in ODD_VALUES:
        [found] = client.search_by_identifier("Patient", system, value)
        assert found["identifier"][0]["value"] == value
    assert client.count("Patient", {"identifier": bundles.token_search_value(system, "")}) == len(ODD_VALUES)


def test_long_identifiers_write_once_up_to_the_limit_and_fail_alone_beyond_it(client):
    system = unique_system("it-long")
    # HAPI keeps conditional URLs in a 768-character column: the client's limit must let everything up to
    # it through and stop what is beyond it, which HAPI would refuse with a 409 (retried in vain).
    near_limit = "L" * (bundles.MAX_CONDITIONAL_URL - len("Patient?" + bundles.identifier_query(system, "")))
    values = ["L" * 150, "L" * 250, "L" * 600, near_limit]  # HAPI indexes 200 characters of a token
    items = [WriteItem(_patient_with(system, v), (system, v), key=len(v)) for v in values]
    too_long = near_limit + "L"
    items.append(WriteItem(_patient_with(system, too_long), (system, too_long), key="too long"))
    for _ in range(2):  # the second time is a redelivery
        outcomes = client.write(items)
        assert [o.ok for o in outcomes] == [True] * 4 + [False], [str(o.error) for o in outcomes if not o.ok]
        assert outcomes[4].error.code == errors.IDENTIFIER_TOO_LONG
    assert _count(client, system) == 4


def _timed(system: str, family: str, source_time_ms: int) -> WriteItem:
    resource = us_core_patient(system, 1, family=family)
    return WriteItem(resource, identifier_of(resource), key=family, source_time_ms=source_time_ms)


def test_a_replayed_older_record_after_a_newer_update_leaves_the_newer_data(client):
    system = unique_system("it-superseded")
    t0 = 1_795_000_000_000
    created = client.write([_timed(system, "Original", t0)])[0]
    updated = client.write([_timed(system, "Newer", t0 + 2_000)])[0]
    assert created.status == 201 and updated.ok and updated.version_id == "2" and not updated.superseded

    replayed = client.write([_timed(system, "Older", t0 + 1_000)])[0]  # a late replay of an older message
    assert replayed.ok and replayed.superseded and replayed.resource_id == created.resource_id
    [stored] = client.search_by_identifier("Patient", system, "P000001")
    assert stored["name"][0]["family"] == "Newer" and stored["meta"]["versionId"] == "2"

    redelivered = client.write([_timed(system, "Newer", t0 + 2_000)])[0]  # the same message again
    assert redelivered.ok and not redelivered.superseded
    [stored] = client.search_by_identifier("Patient", system, "P000001")
    assert stored["name"][0]["family"] == "Newer" and stored["meta"]["versionId"] == "2"  # still a no-op
    assert bundles.stored_source_time(stored) == t0 + 2_000
    assert _count(client, system) == 1


def test_old_and_new_of_one_patient_in_one_call_keep_the_newest_on_hapi(client):
    system = unique_system("it-superseded-one-call")
    t0 = 1_795_000_000_000
    outcomes = client.write([_timed(system, "Newest", t0 + 5), _timed(system, "Oldest", t0)])
    assert [o.superseded for o in outcomes] == [False, True]
    [stored] = client.search_by_identifier("Patient", system, "P000001")
    assert stored["name"][0]["family"] == "Newest"
