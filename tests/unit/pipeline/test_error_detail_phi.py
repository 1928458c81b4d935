"""No error detail carries a message value (issue 11): every error path runs with PHI-like values and
each detail is scanned for them.

Parse, validate and map: every code in ERROR_CODES must be reached here (a new code without a case
fails `test_every_code_is_scanned`). Write: the FHIR store client's codes reachable from a server's
answer or a transport fault, with the server echoing the values back.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from beam_pipeline.contracts.outcome import ERROR_CODES
from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, RetryPolicy, WriteItem
from beam_pipeline.mapping import feed
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.parse_and_map import _MapFn, _ParseFn
from beam_pipeline.us_core import Error, TransformConfig, conformance, stages, transform
from beam_pipeline.us_core.structural import structural_problems
from tests.support.broken_mapping import broken_set

# Made-up but PHI-shaped: a name, an SSN, an address, an e-mail, a medical record number.
PHI = ("Qzxwvjhn", "Smythwyck", "987-65-4329", "Elmstrasse 42", "qzx.smythwyck@example.org", "MRN-7730041")
NAME, FAMILY, SSN, STREET, EMAIL, MRN = PHI
PATIENT = {"Id": MRN, "FIRST": NAME, "LAST": FAMILY, "SSN": SSN, "ADDRESS": STREET, "EMAIL": EMAIL}
SAMPLES = Path(__file__).resolve().parents[3] / "include" / "sample_messages"


def _leaks(detail: str) -> list[str]:
    lowered = detail.lower()
    return [value for value in PHI if value.lower() in lowered or value.lower().replace(" ", "") in lowered]


def _observation(**fields: str) -> bytes:
    row = json.loads((SAMPLES / "12_observation_body_weight.json").read_text())
    return json.dumps(row | {"PATIENT": MRN, "DESCRIPTION": f"{NAME} {FAMILY}"} | fields).encode()


def _text(raw: str) -> bytes:
    return raw.encode("utf-8")


P = json.dumps(PATIENT)[1:-1]  # the members, to splice into hand-written JSON
# (stage, code, raw message, transform config)
CASES = [
    ("parse", "too_large", json.dumps(PATIENT).encode(), TransformConfig(max_message_bytes=20)),
    ("parse", "empty_message", b"", None),
    ("parse", "invalid_utf8", json.dumps(PATIENT).encode() + b"\xff", None),
    ("parse", "invalid_json", _text("{" + P + " " + FAMILY + "}"), None),
    ("parse", "invalid_json", _text(f'{{"{FAMILY}": "{NAME}"\x01}}'), None),
    ("parse", "not_an_object", _text(json.dumps([NAME, FAMILY, SSN])), None),
    ("parse", "not_an_object", _text(json.dumps(f"{NAME} {FAMILY}")), None),
    ("parse", "invalid_number", _text("{" + P + ', "ZIP": ' + "7" * 200 + "}"), None),
    ("parse", "invalid_number", _text("{" + P + ', "LAT": NaN}'), None),
    ("parse", "duplicate_key", _text(f'{{"{FAMILY}": 1, "{FAMILY}": 2}}'), None),
    ("parse", "too_deep", _text("{" + P + f', "{FAMILY}": ' + "[" * 50 + "]" * 50 + "}"), None),
    ("parse", "too_deep", _text(f'{{"{FAMILY}": ' + "[" * 50_000), None),
    ("parse", "lone_surrogate", _text("{" + P + f', "MIDDLE": "{NAME}\\ud800"}}'), None),
    ("validate", "missing_source_id", json.dumps(PATIENT | {"Id": ""}).encode(), None),
    ("validate", "no_usable_name", json.dumps(PATIENT | {"FIRST": "", "LAST": "", "MIDDLE": NAME}).encode(), None),
    ("validate", "invalid_date", json.dumps(PATIENT | {"BIRTHDATE": FAMILY}).encode(), None),
    ("validate", "invalid_date", json.dumps(PATIENT | {"DEATHDATE": f"2020-01-01T{NAME}"}).encode(), None),
    ("validate", "invalid_field_type", json.dumps(PATIENT | {"LAST": {"family": FAMILY}}).encode(), None),
    ("validate", "invalid_field_type", json.dumps(PATIENT | {"LAT": STREET}).encode(), None),
    ("validate", "invalid_characters", json.dumps(PATIENT | {"LAST": FAMILY + "\x00"}).encode(), None),
    ("validate", "unknown_message_type", json.dumps(PATIENT | {"MESSAGE_TYPE": FAMILY}).encode(), None),
    ("validate", "unknown_message_type", json.dumps(PATIENT | {"MESSAGE_TYPE": f"{NAME} {SSN}"}).encode(), None),
    ("validate", "missing_required_field", _observation(PATIENT=""), None),
    ("validate", "unknown_code", _observation(CATEGORY=FAMILY), None),
    ("validate", "non_numeric_value", _observation(VALUE=FAMILY), None),
    ("map", "us_core_rules", json.dumps(PATIENT | {"STATE": FAMILY, "CITY": NAME}).encode(), None),
    ("map", "us_core_rules", json.dumps(PATIENT | {"FIRST": "N/A", "MIDDLE": NAME}).encode(), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "code", "raw", "config"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_transform_error_details_carry_no_value(stage, code, raw, config):
    result = transform(raw, topic="patients", config=config or TransformConfig())
    assert isinstance(result, Error) and (result.stage, result.code) == (stage, code), result
    assert _leaks(result.detail) == [], result.detail


def _raising(where: str):
    def boom(*_args, **_kwargs):
        raise ValueError(f"{where}: {NAME} {FAMILY} {SSN}")  # exception texts quote values

    return boom


def _error_from_a_raising_mapper(monkeypatch, where: str) -> Error:
    # Where a mapping's own code runs: its checks, its building of resources, the US Core rule check.
    target = {"validate": (feed, "check"), "map": (stages, "_identifier"), "check": (stages, "check_resource")}
    monkeypatch.setattr(*target[where], _raising(where))
    settings = TransformConfig()
    message = RawMessage("patients", 0, 1, 0, MRN.encode(), json.dumps(PATIENT).encode())
    [out] = list(_ParseFn(settings, "job").process(message))
    if where != "validate":
        [out] = list(_MapFn(settings, "job").process(out))
    record = out.value
    return Error(record.stage, record.code, record.detail)


@pytest.mark.parametrize(
    ("where", "stage", "code"),
    [("validate", "validate", "mapping_failed"), ("map", "map", "mapping_failed"), ("check", "map", "internal_error")],
)
def test_an_exception_quoting_values_leaves_only_its_type(monkeypatch, where, stage, code):
    error = _error_from_a_raising_mapper(monkeypatch, where)
    assert (error.stage, error.code) == (stage, code)
    assert _leaks(error.detail) == [] and "ValueError" in error.detail


def test_an_exception_in_parse_leaves_only_its_type():
    broken = TransformConfig(max_message_bytes=None)  # type: ignore[arg-type]
    message = RawMessage("patients", 0, 1, 0, MRN.encode(), json.dumps(PATIENT).encode())
    [out] = list(_ParseFn(broken, "job").process(message))
    assert (out.value.stage, out.value.code) == ("parse", "internal_error") and _leaks(out.value.detail) == []


def test_structural_problems_name_elements_not_values():
    resource = {"resourceType": "Patient", "gender": FAMILY, "birthDate": NAME, "name": [{"family": [SSN]}]}
    problems = structural_problems(resource)
    assert problems and _leaks("; ".join(problems)) == []


def test_a_profile_violation_names_elements_not_values(tmp_path):
    # The broken set writes Patients without a gender and with BIRTH as it comes.
    config = TransformConfig(mappings=broken_set(tmp_path), profile_validation="enforce")
    raw = json.dumps({"Id": MRN, "LAST": FAMILY, "BIRTH": f"{NAME} {SSN}"}).encode()
    result = transform(raw, config=config)
    assert (result.stage, result.code) == ("validate", "profile_violation")
    assert "Patient.birthDate (format)" in result.detail and _leaks(result.detail) == []


def test_a_profile_validator_raising_leaves_only_its_type(monkeypatch):
    class Raising:
        def issues(self, resource):  # noqa: ANN001, ANN202
            raise ValueError(f"{NAME} {FAMILY} {SSN}")

    monkeypatch.setattr(conformance, "validator_for", lambda _url: Raising())
    result = transform(json.dumps(PATIENT).encode(), config=TransformConfig(profile_validation="warn"))
    assert (result.stage, result.code) == ("validate", "internal_error") and _leaks(result.detail) == []


def test_every_code_is_scanned():
    scanned = {(stage, code) for stage, code, _, _ in CASES} | {
        ("validate", "profile_violation"),
        ("validate", "internal_error"),
        ("validate", "mapping_failed"),
        ("map", "mapping_failed"),
        ("map", "internal_error"),
        ("parse", "internal_error"),
        ("map", "structure_invalid"),
    }
    assert {(stage, code) for stage, codes in ERROR_CODES.items() for code in codes} <= scanned


# -- write side: the FHIR store echoes the values back in every way it can --------------------------------


def _echo(status: int, body: bytes, content_type: str = "application/fhir+json"):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    return handler


def _raise(exc_type: type[Exception]):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"{NAME} {FAMILY} at {request.url}", request=request)

    return handler


OUTCOME = json.dumps(
    {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": f"Patient {NAME} {FAMILY} SSN {SSN}"}],
    }
).encode()
WRITE_FAULTS = {
    "http_error with an echoing OperationOutcome": _echo(422, OUTCOME),
    "http_error with an echoing HTML page": _echo(500, f"<h1>{NAME} {FAMILY}</h1>".encode(), "text/html"),
    "invalid_response": _echo(200, f"not a bundle {NAME} {FAMILY}".encode(), "text/plain"),
    "connection_error": _raise(httpx.ConnectError),
    "timeout": _raise(httpx.ReadTimeout),
}


def _patient_resource(value: str = MRN) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:k2f-test:phi", "value": value}],
        "name": [{"family": FAMILY, "given": [NAME]}],
        "telecom": [{"system": "email", "value": EMAIL}],
        "address": [{"line": [STREET]}],
        "gender": "unknown",
    }


def _write(handler, items) -> list:
    config = FhirStoreConfig(
        base_url="http://fhir.test/fhir",
        retry=RetryPolicy(max_attempts=1, total_timeout=5, initial_backoff=0, max_backoff=0),
    )
    with FhirStoreClient(config, transport=httpx.MockTransport(handler), sleep=lambda _s: None) as client:
        return client.write(items)


@pytest.mark.parametrize("handler", WRITE_FAULTS.values(), ids=WRITE_FAULTS.keys())
def test_write_error_details_carry_no_value(handler):
    [outcome] = _write(handler, [WriteItem(_patient_resource(), ("urn:k2f-test:phi", MRN), key=0)])
    assert not outcome.ok
    assert _leaks(outcome.error.detail) == [], outcome.error.detail
    assert _leaks(str(outcome.error)) == [], str(outcome.error)  # what a log line would show


@pytest.mark.parametrize(
    "value",
    [f"{MRN}-{FAMILY}-" + "x" * 20_000, f"{MRN}-{FAMILY}\ud800"],
    ids=["identifier too long for a URL", "identifier that cannot be encoded"],
)
def test_invalid_item_details_carry_no_value(value):
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    [outcome] = _write(never, [WriteItem(_patient_resource(value), ("urn:k2f-test:phi", value), key=0)])
    assert not outcome.ok and not outcome.error.retryable
    assert _leaks(outcome.error.detail) == [], outcome.error.detail
