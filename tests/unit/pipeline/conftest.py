"""A FHIR server for the write step's unit tests: enough of one, in memory, behind the real client."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs

import httpx
import pytest

from beam_pipeline.fhir_store import FhirStoreClient
from beam_pipeline.fhir_store.bundles import SOURCE_TIME_SYSTEM
from beam_pipeline.transforms import write


class FakeStore:
    """Searches find nothing (or, with `stored_source_time` set, a stored Patient with that source time, version
    4); every batch entry is created, but the guarded update of that Patient, which is answered with version 4
    when `keeps_version` (as HAPI answers an update to the content it holds), else 5. It notes each request's
    Authorization and each bundle's resource types."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        self.stored_source_time: int | None = None
        self.keeps_version = False
        self.bundles: list[list[str]] = []  # resource types of each batch bundle, in the order received
        self.gate: threading.Event | None = None  # when set, each batch bundle waits for it (a slow store)

    @property
    def batches(self) -> int:
        return len(self.bundles)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.authorizations.append(request.headers.get("authorization"))
        if request.url.path.endswith("/_search"):
            entries = []
            if self.stored_source_time is not None:
                system, value = parse_qs(request.content.decode())["identifier"][0].split("|", 1)
                stored = {
                    "resourceType": "Patient",
                    "id": "1",
                    "meta": {
                        "versionId": "4",
                        "tag": [{"system": SOURCE_TIME_SYSTEM, "code": str(self.stored_source_time)}],
                    },
                    "identifier": [{"system": system, "value": value}],
                }
                entries = [{"resource": stored, "search": {"mode": "match"}}]
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": entries})
        entries = json.loads(request.content)["entry"]
        self.bundles.append([e["resource"]["resourceType"] for e in entries])
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the store's gate"
        created = {"status": "201 Created", "location": "X/1/_history/1"}
        version = "4" if self.keeps_version else "5"
        updated = {"status": "200 OK", "location": f"Patient/1/_history/{version}", "etag": f'W/"{version}"'}
        answers = [{"response": updated if e["request"]["method"] == "PUT" else created} for e in entries]
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": answers})


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    """The write step's clients talk to a FakeStore."""
    fake = FakeStore()

    class LocalClient(FhirStoreClient):
        def __init__(self, config, **kwargs):  # noqa: ANN001, ANN003
            super().__init__(config, transport=httpx.MockTransport(fake), **kwargs)

    monkeypatch.setattr(write, "FhirStoreClient", LocalClient)
    return fake
