"""Test doubles for the FHIR store client: a FHIR server in memory behind httpx.MockTransport (enough of
batch, conditional update/create and search, with a request log and hooks to inject failures), a fake
clock, and google-auth credentials that count their refreshes. No network."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

import google.auth.credentials
import httpx

from beam_pipeline.fhir_store import WriteItem
from beam_pipeline.us_core.terminology import US_CORE_PATIENT

BASE = "http://fhir.test/fhir"
SYSTEM = "urn:k2f-test:mrn"


def patient(value: str, family: str = "Synthetic", system: str = SYSTEM) -> dict:
    return {
        "resourceType": "Patient",
        "meta": {"profile": [US_CORE_PATIENT]},
        "identifier": [{"system": system, "value": value}],
        "name": [{"family": family, "given": ["Test"]}],
        "gender": "unknown",
        "birthDate": "1970-01-01",
    }


def item(value: str, family: str = "Synthetic", key: object = None) -> WriteItem:
    return WriteItem(patient(value, family), (SYSTEM, value), key=key if key is not None else value)


@dataclass
class Logged:
    method: str
    url: str
    headers: dict[str, str]
    body: dict | None


@dataclass
class FakeFhirServer:
    """In-memory FHIR server. `on_request` may return a Response to short-circuit (fault injection);
    `entry_status` may return a status for a single batch entry (entry-level faults)."""

    base: str = BASE
    resources: dict[str, dict] = field(default_factory=dict)  # "Patient/1" -> resource
    versions: dict[str, int] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    on_request: Callable[[httpx.Request, int], httpx.Response | None] | None = None
    entry_status: Callable[[dict], int | None] | None = None
    delay: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0
    _next_id: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        is_json = "json" in request.headers.get("content-type", "json")
        body = json.loads(request.content) if request.content and is_json else None
        with self._lock:
            self.log.append(Logged(request.method, str(request.url), dict(request.headers), body))
            n = len(self.log)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            if self.on_request is not None:
                injected = self.on_request(request, n)
                if injected is not None:
                    return injected
            return self._handle(request, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def patients(self) -> list[dict]:
        return [r for k, r in self.resources.items() if k.startswith("Patient/")]

    # -- FHIR ---------------------------------------------------------------------------------------

    def _handle(self, request: httpx.Request, body: dict | None) -> httpx.Response:
        path = request.url.path
        base_path = httpx.URL(self.base).path
        rel = path[len(base_path) :].strip("/")
        if request.method == "POST" and rel == "":
            return self._batch(body or {})
        if request.method == "GET" and rel == "metadata":
            return httpx.Response(
                200,
                json={
                    "resourceType": "CapabilityStatement",
                    "fhirVersion": "4.0.1",
                    "software": {"name": "Fake", "version": "1"},
                },
            )
        if request.method == "GET" and rel.isalpha():
            return self._search(rel, dict(request.url.params))
        if request.method == "POST" and rel.endswith("/_search") and rel[: -len("/_search")].isalpha():
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            return self._search(rel[: -len("/_search")], form)
        return httpx.Response(404, json=_outcome("not-found"))

    def _batch(self, bundle: dict) -> httpx.Response:
        if bundle.get("type") != "batch":
            return httpx.Response(400, json=_outcome("invalid"))
        entries = []
        with self._lock:
            for entry in bundle.get("entry", []):
                entries.append({"response": self._entry(entry)})
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": entries})

    def _entry(self, entry: dict) -> dict:
        if self.entry_status is not None:
            status = self.entry_status(entry)
            if status is not None:
                return {"status": f"{status} Injected", "outcome": _outcome("processing", "synthetic-diag")}
        resource, request = entry["resource"], entry["request"]
        rtype = resource["resourceType"]
        if resource.get("gender") == "invalid":
            return {"status": "422 Unprocessable Entity", "outcome": _outcome("invariant", "gender invalid")}
        if request["method"] == "PUT" and "?" in request["url"]:
            matches = self._matching(rtype, request["url"].split("?", 1)[1])
            if len(matches) > 1:
                return {"status": "412 Precondition Failed", "outcome": _outcome("duplicate")}
            if matches:
                return self._store(matches[0], resource, 200)
            return self._store(self._new_id(rtype), resource, 201)
        if request["method"] == "PUT":
            key = request["url"]
            if request.get("ifMatch") and request["ifMatch"] != f'W/"{self.versions.get(key)}"':
                return {"status": "409 Conflict", "outcome": _outcome("conflict")}
            return self._store(key, resource, 200 if key in self.resources else 201)
        if request.get("ifNoneExist"):
            matches = self._matching(rtype, request["ifNoneExist"])
            if matches:
                return {"status": "200 OK", "location": f"{matches[0]}/_history/{self.versions[matches[0]]}"}
        return self._store(self._new_id(rtype), resource, 201)

    def _store(self, key: str, resource: dict, status: int) -> dict:
        meta = dict(resource.get("meta") or {}, lastUpdated="2024-01-01T00:00:00Z")
        new = dict(resource, id=key.split("/")[1], meta=meta)
        before = self.resources.get(key)
        # As HAPI: an update to the content already stored makes no new version (a no-op update).
        if before is None or new != dict(before, meta={k: v for k, v in before["meta"].items() if k != "versionId"}):
            self.versions[key] = self.versions.get(key, 0) + 1
        v = self.versions[key]
        self.resources[key] = dict(new, meta=dict(meta, versionId=str(v)))
        return {
            "status": f"{status} {'Created' if status == 201 else 'OK'}",
            "location": f"{key}/_history/{v}",
            "etag": f'W/"{v}"',
            "lastModified": "2024-01-01T00:00:00Z",
        }

    def _new_id(self, rtype: str) -> str:
        self._next_id += 1
        return f"{rtype}/{self._next_id}"

    def _matching(self, rtype: str, query: str) -> list[str]:
        params = parse_qs(query)  # decodes the percent-encoding once, as a server does
        token = params["identifier"][0] if "identifier" in params else None
        return [k for k, r in self.resources.items() if k.startswith(rtype + "/") and _has_token(r, token)]

    def _search(self, rtype: str, params: dict) -> httpx.Response:
        with self._lock:
            token = params.get("identifier")
            keys = [
                k
                for k, r in self.resources.items()
                if k.startswith(rtype + "/") and (token is None or _has_token(r, token))
            ]
            if params.get("_summary") == "count":
                return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "total": len(keys)})
            entries = [{"resource": self.resources[k], "search": {"mode": "match"}} for k in keys]
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
        )


def _has_token(resource: dict, token: str | None) -> bool:
    """Does `resource` carry one of the identifiers in a token search value (comma-separated alternatives,
    `system|value`, with FHIR's backslash escapes)?"""
    if token is None:
        return True
    wanted = {tuple(parse_token(alternative)) for alternative in _split_unescaped(token, ",", unescape=False)}
    return any((i.get("system"), i.get("value")) in wanted for i in resource.get("identifier", []))


def parse_token(text: str) -> list[str]:
    """`system|value` (escapes undone) as a server reads one token alternative."""
    return _split_unescaped(text, "|", unescape=True)


def _split_unescaped(text: str, separator: str, *, unescape: bool) -> list[str]:
    """Split on `separator` where it is not escaped by a backslash; undo the escapes when `unescape`."""
    parts, current, chars = [], [], iter(text)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, "")
            current.append(escaped if unescape else ch + escaped)
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _outcome(code: str, diagnostics: str = "") -> dict:
    issue = {"severity": "error", "code": code}
    if diagnostics:
        issue["diagnostics"] = diagnostics
    return {"resourceType": "OperationOutcome", "issue": [issue]}


class CountingCredentials(google.auth.credentials.Credentials):
    """Google credentials whose refresh() mints token-1, token-2, ... valid for `lifetime` seconds of `clock`."""

    def __init__(self, clock, lifetime=3600.0, quota_project=None, fail=None):
        super().__init__()
        self.clock = clock
        self.lifetime = lifetime
        self.refreshes = 0
        self.requests_seen = []
        self._quota_project_id = quota_project
        self.fail = fail

    def refresh(self, request):
        self.requests_seen.append(request)
        if self.fail is not None:
            raise self.fail
        self.refreshes += 1
        self.token = f"token-{self.refreshes}"
        self.expiry = datetime.fromtimestamp(self.clock() + self.lifetime, UTC).replace(tzinfo=None)


class FakeTime:
    """A clock that `sleep` advances instantly, recording each wait."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now
