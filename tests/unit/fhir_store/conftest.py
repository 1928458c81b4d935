"""Fixtures for the FHIR store client's unit tests; the doubles live in fhir_fakes.py."""

from __future__ import annotations

import pytest
from fhir_fakes import BASE, FakeFhirServer, FakeTime

from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, RetryPolicy


@pytest.fixture
def server() -> FakeFhirServer:
    return FakeFhirServer()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(server: FakeFhirServer, fake_time: FakeTime):
    clients = []

    def make(**overrides) -> FhirStoreClient:
        overrides.setdefault("base_url", BASE)
        overrides.setdefault("retry", RetryPolicy(max_attempts=4, total_timeout=60, initial_backoff=1, max_backoff=8))
        transport = overrides.pop("transport", None) or server.transport()
        kwargs = {
            k: overrides.pop(k) for k in ("google_credentials", "google_request_factory", "slots") if k in overrides
        }
        client = FhirStoreClient(
            FhirStoreConfig(**overrides),
            transport=transport,
            sleep=fake_time.sleep,
            monotonic=fake_time.monotonic,
            clock=fake_time.time,
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()
