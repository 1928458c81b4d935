"""Reads: search by identifier (paging stays on the store's origin), count, and the capability check."""

from __future__ import annotations

import httpx
import pytest
from fhir_fakes import BASE, SYSTEM, item

from beam_pipeline.fhir_store import FhirStoreError, RetryPolicy, errors


def test_search_by_identifier_finds_what_was_written(server, make_client):
    client = make_client()
    client.write([item("P1"), item("P2")])
    found = client.search_by_identifier("Patient", SYSTEM, "P1")
    assert [r["identifier"][0]["value"] for r in found] == ["P1"]
    assert client.search_by_identifier("Patient", SYSTEM, "nobody") == []
    assert client.count("Patient") == 2
    assert client.count("Patient", {"identifier": f"{SYSTEM}|P2"}) == 1


def test_search_follows_next_links_on_the_same_origin_only(make_client):
    pages = {
        "1": {"link": [{"relation": "next", "url": f"{BASE}?_getpages=x&page=2"}], "n": "a"},
        "2": {"link": [{"relation": "next", "url": "https://elsewhere.example/fhir?page=3"}], "n": "b"},
    }
    seen = []

    def handler(request):
        seen.append(str(request.url))
        page = request.url.params.get("page", "1")
        body = {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": pages[page]["link"],
            "entry": [
                {"resource": {"resourceType": "Patient", "id": pages[page]["n"]}, "search": {"mode": "match"}},
                {"resource": {"resourceType": "Organization", "id": "inc"}, "search": {"mode": "include"}},
            ],
        }
        return httpx.Response(200, json=body)

    client = make_client(transport=httpx.MockTransport(handler))
    found = client.search_by_identifier("Patient", SYSTEM, "P1")
    assert [r["id"] for r in found] == ["a", "b"]
    assert len(seen) == 2 and not any("elsewhere" in u for u in seen)


def test_search_errors_raise_structured_errors_after_retries(server, make_client, fake_time):
    server.on_request = lambda request, n: httpx.Response(503) if n <= 1 else None
    assert make_client().search("Patient", {"identifier": f"{SYSTEM}|x"})["resourceType"] == "Bundle"
    assert len(fake_time.sleeps) == 1
    server.on_request = lambda request, n: httpx.Response(
        403, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden"}]}
    )
    with pytest.raises(FhirStoreError) as info:
        make_client().search_by_identifier("Patient", SYSTEM, "123-45-6789")
    err = info.value
    # 403 is the deployment's fault (IAM): not resent now, but retryable once an operator fixed it.
    assert (err.http_status, err.retryable, err.transient, err.attempts) == (403, True, False, 1)
    assert err.endpoint == f"GET {BASE}/Patient"
    assert "123-45-6789" not in str(err)  # the identifier is in the query string, which is never reported


def test_search_rejects_odd_resource_types(make_client):
    with pytest.raises(ValueError):
        make_client().search("Patient?x=1")


def test_check_on_an_r4_server(make_client):
    report = make_client().check()
    assert report.ok and report.fhir_version == "4.0.1" and report.software == "Fake 1"


def test_check_flags_a_non_r4_server(make_client):
    def handler(request):
        return httpx.Response(200, json={"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"})

    report = make_client(transport=httpx.MockTransport(handler)).check()
    assert report.reachable and not report.ok
    assert "not R4" in report.problems[0]


def test_check_on_an_unreachable_server_reports_instead_of_raising(make_client):
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    report = make_client(transport=httpx.MockTransport(refuse)).check(retry=RetryPolicy(max_attempts=2))
    assert not report.reachable and not report.ok
    assert errors.CONNECTION_ERROR in report.problems[0]


def test_check_covers_a_separate_read_server(server, make_client):
    def handler(request):
        if request.url.host == "reader.test":
            return httpx.Response(404)
        return server(request)

    client = make_client(read_base_url="http://reader.test/fhir", transport=httpx.MockTransport(handler))
    report = client.check(retry=RetryPolicy(max_attempts=1))
    assert report.reachable and not report.ok
    assert "reader.test" in report.problems[0]
