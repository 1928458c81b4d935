"""Healthcare API addressing, headers and checks, and the config built from the pipeline's flags; a
recorded request log, google-auth credentials objects, no network."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import httpx
import pytest
from fhir_fakes import CountingCredentials, FakeFhirServer, item

from beam_pipeline.fhir_store import (
    AuthConfig,
    FhirStoreClient,
    FhirStoreConfig,
    HealthcareApiStore,
    RetryPolicy,
    WriteItem,
)
from beam_pipeline.fhir_store import healthcare_api as hc

STORE = HealthcareApiStore(
    project_id="k2f-proj", location="us-central1", dataset="clinical", write_store="post-store", read_store="get-store"
)
ROOT = "https://healthcare.googleapis.com/v1/projects/k2f-proj/locations/us-central1/datasets/clinical/fhirStores"


def test_urls_follow_the_original_flags():
    assert hc.fhir_base_url(hc.DEFAULT_ENDPOINT, "v1", "p", "l", "d", "s") == (
        "https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/fhirStores/s/fhir"
    )
    config = FhirStoreConfig(healthcare_api=STORE)
    assert config.write_base == f"{ROOT}/post-store/fhir"
    assert config.read_base == f"{ROOT}/get-store/fhir"
    assert STORE.store_url("post-store") == f"{ROOT}/post-store"
    beta = HealthcareApiStore("p", "europe-west2", "d", "s", api_version="v1beta1")
    assert FhirStoreConfig(healthcare_api=beta).read_base.endswith(
        "/v1beta1/projects/p/locations/europe-west2/datasets/d/fhirStores/s/fhir"
    )
    assert config.auth_kind == "google"


@pytest.mark.parametrize("bad", ["a/b", "..", "", "x?y=1", "s p"])
def test_ids_that_would_reshape_the_url_are_refused(bad):
    with pytest.raises(ValueError):
        HealthcareApiStore("p", "l", "d", bad)


def test_from_flags_maps_the_original_sample_flags():
    flags = {
        "hcapi_project_id": "k2f-proj",
        "hcapi_location": "us-central1",
        "hcapi_dataset": "clinical",
        "hcapi_version": "v1",
        "hcapi_get_fhir_store": "get-store",
        "hcapi_post_fhir_store": "post-store",
        "write_mode": "upsert",
        "bundle_size": 100,
        "max_bundles_in_flight": 8,
        "fhir_base_url": None,
        "fhir_auth": None,
    }
    config = FhirStoreConfig.from_flags(flags)
    assert config.healthcare_api == STORE
    assert (config.bundle_size, config.max_bundles_in_flight, config.auth_kind) == (100, 8, "google")
    # picklable: a DoFn carries it to the workers
    assert pickle.loads(pickle.dumps(config)) == config


def test_from_flags_base_url_and_auth_secret():
    config = FhirStoreConfig.from_flags(
        {"fhir_base_url": "https://fhir.example/r4", "fhir_auth": "bearer", "hcapi_project_id": "ignored"},
        auth_secret={"token": "t"},
    )
    assert config.base_url == "https://fhir.example/r4" and config.auth_kind == "bearer"
    assert config.healthcare_api is None
    with pytest.raises(ValueError, match="--hcapi_dataset"):
        FhirStoreConfig.from_flags({"hcapi_project_id": "p", "hcapi_location": "l", "hcapi_post_fhir_store": "s"})


def test_config_validation():
    with pytest.raises(ValueError):
        FhirStoreConfig()
    with pytest.raises(ValueError):
        FhirStoreConfig(base_url="http://x/fhir", healthcare_api=STORE)
    with pytest.raises(ValueError):
        FhirStoreConfig(base_url="ftp://x")
    with pytest.raises(ValueError):
        FhirStoreConfig(base_url="http://x", write_mode="merge")
    with pytest.raises(ValueError):
        FhirStoreConfig(base_url="http://x", bundle_size=0)
    assert FhirStoreConfig(base_url="http://x/fhir/").write_base == "http://x/fhir"
    assert FhirStoreConfig(base_url="http://x/fhir", read_base_url="http://y/fhir").read_base == "http://y/fhir"


class HealthcareFake:
    """The two stores behind one transport, recording every request."""

    def __init__(self, versions=None):
        self.write = FakeFhirServer(base=f"{ROOT}/post-store/fhir")
        self.read = FakeFhirServer(base=f"{ROOT}/get-store/fhir")
        self.versions = versions if versions is not None else {"post-store": "R4", "get-store": "R4"}
        self.log: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append(request)
        path = str(request.url.copy_with(query=None))
        for name in ("post-store", "get-store"):
            if path == f"{ROOT}/{name}":
                if name not in self.versions:
                    return httpx.Response(404, json={"error": {"code": 404, "status": "NOT_FOUND"}})
                return httpx.Response(
                    200, json={"name": f"projects/.../fhirStores/{name}", "version": self.versions[name]}
                )
        if path.startswith(f"{ROOT}/post-store/fhir"):
            return self.write(request)
        if path.startswith(f"{ROOT}/get-store/fhir"):
            return self.read(request)
        return httpx.Response(404)


def _client(fake, creds, **config):
    return FhirStoreClient(
        FhirStoreConfig(healthcare_api=STORE, retry=RetryPolicy(max_attempts=1), **config),
        transport=httpx.MockTransport(fake),
        google_credentials=creds,
        google_request_factory=lambda: "google-transport",
        clock=creds.clock,
    )


def test_writes_go_to_the_post_store_and_searches_to_the_get_store_with_one_token():
    now = [1_700_000_000.0]
    creds = CountingCredentials(lambda: now[0], quota_project="billing")
    fake = HealthcareFake()
    with _client(fake, creds) as client:
        outcomes = client.write([item("P1"), item("P2")])
        assert all(o.ok for o in outcomes)
        assert client.search_by_identifier("Patient", "urn:k2f-test:mrn", "P1") == []  # the read store is apart
        fake.read.resources["Patient/9"] = {
            "resourceType": "Patient",
            "id": "9",
            "identifier": [{"system": "urn:k2f-test:mrn", "value": "P1"}],
        }
        assert [r["id"] for r in client.search_by_identifier("Patient", "urn:k2f-test:mrn", "P1")] == ["9"]
    methods = [(r.method, str(r.url.copy_with(query=None))) for r in fake.log]
    assert methods == [
        ("POST", f"{ROOT}/post-store/fhir"),
        ("GET", f"{ROOT}/get-store/fhir/Patient"),
        ("GET", f"{ROOT}/get-store/fhir/Patient"),
    ]
    post = fake.log[0]
    assert post.headers["authorization"] == "Bearer token-1"
    assert post.headers["x-goog-user-project"] == "billing"
    assert post.headers["content-type"] == "application/fhir+json;charset=utf-8"
    assert fake.log[1].url.params["identifier"] == "urn:k2f-test:mrn|P1"
    assert creds.refreshes == 1  # one token for every request, not one per message


def test_token_refreshed_only_when_near_expiry_across_requests():
    now = [1_700_000_000.0]
    creds = CountingCredentials(lambda: now[0], lifetime=3600)
    fake = HealthcareFake()
    with _client(fake, creds) as client:
        for i in range(3):
            client.write([item(f"P{i}")])
            now[0] += 600
        assert creds.refreshes == 1
        now[0] += 1800 - 299  # 3600 s lifetime: inside the 5-minute margin now
        client.write([item("P9")])
    assert creds.refreshes == 2
    assert [r.headers["authorization"] for r in fake.log] == ["Bearer token-1"] * 3 + ["Bearer token-2"]
    assert creds.expiry == datetime.fromtimestamp(now[0] + 3600, UTC).replace(tzinfo=None)


def test_check_reports_r4_stores():
    fake = HealthcareFake()
    with _client(fake, CountingCredentials(lambda: 1_700_000_000.0)) as client:
        report = client.check()
    assert report.ok and report.reachable and report.fhir_version == "4.0.1"
    urls = [str(r.url) for r in fake.log]
    assert urls == [f"{ROOT}/post-store", f"{ROOT}/get-store", f"{ROOT}/post-store/fhir/metadata"]


def test_check_reports_a_missing_store_and_a_wrong_version():
    fake = HealthcareFake(versions={"post-store": "STU3"})
    with _client(fake, CountingCredentials(lambda: 1_700_000_000.0)) as client:
        report = client.check()
    assert not report.ok and report.reachable
    assert any("post-store holds FHIR version STU3" in p for p in report.problems)
    assert any("get-store does not exist" in p for p in report.problems)


def test_healthcare_api_with_a_given_bearer_token():
    fake = HealthcareFake()
    config = FhirStoreConfig(healthcare_api=STORE, auth=AuthConfig(kind="bearer", token="tok"))
    with FhirStoreClient(config, transport=httpx.MockTransport(fake)) as client:
        client.write([item("P1")])
    assert fake.log[0].headers["authorization"] == "Bearer tok"


def test_default_credentials_come_from_adc(monkeypatch):
    creds = CountingCredentials(lambda: 1_700_000_000.0)
    seen = {}

    def fake_default(scopes=None):
        seen["scopes"] = scopes
        return creds, "k2f-proj"

    monkeypatch.setattr("google.auth.default", fake_default)
    fake = HealthcareFake()
    with FhirStoreClient(
        FhirStoreConfig(healthcare_api=STORE), transport=httpx.MockTransport(fake), google_request_factory=object
    ) as client:
        client.write([item("P1")])
    assert seen["scopes"] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert fake.log[0].headers["authorization"] == "Bearer token-1"


def test_guarded_writes_read_the_write_store_not_the_read_store():
    # The read store may be another store altogether: what decides "newer" is what the write store holds.
    creds = CountingCredentials(lambda: 1_700_000_000.0)
    fake = HealthcareFake()
    timed = item("P1", "Newer")
    with _client(fake, creds) as client:
        first = client.write([WriteItem(timed.resource, timed.identifier, key=1, source_time_ms=2_000)])[0]
        older = item("P1", "Older")
        second = client.write([WriteItem(older.resource, older.identifier, key=2, source_time_ms=1_000)])[0]
    assert first.ok and first.status == 201 and second.ok and second.superseded
    searches = [str(r.url) for r in fake.log if r.url.path.endswith("/_search")]
    assert searches == [f"{ROOT}/post-store/fhir/Patient/_search"] * 2
    assert [p["name"][0]["family"] for p in fake.write.patients()] == ["Newer"]
