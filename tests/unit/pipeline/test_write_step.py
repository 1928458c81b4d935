"""The write step's own rules (beam_pipeline/transforms/write.py): the source time each write carries,
no credential in the pickled step, the secret read and re-read on the worker, and an unexpected exception
leaving its bundle's messages retryable instead of lost."""

from __future__ import annotations

import json
import pickle

import pytest
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipeline.contracts.error_record import replay_headers
from beam_pipeline.contracts.outcome import MappedResource
from beam_pipeline.fhir_store import AuthConfig, FhirStoreConfig, errors
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms import write
from beam_pipeline.transforms.outputs import FAILED, TALLY
from beam_pipeline.transforms.parse_and_map import MappedMessage
from beam_pipeline.transforms.write import _WriteBundlesFn, source_time_ms

SYSTEM = "urn:k2f-test:write-step"
NOW_MS = 1_795_000_000_000
SECRET_NAME = "projects/k2f-local/secrets/fhir-auth/versions/latest"
CREDENTIALS = {"token": "tok-3f1e", "password": "pw-9c2a", "client_secret": "cs-77d0"}


def _message(offset: int, value: str = "p", *, timestamp_ms: int = NOW_MS, headers=()) -> MappedMessage:
    raw = RawMessage("patients", 0, offset, timestamp_ms, None, json.dumps({"Id": value}).encode(), tuple(headers))
    patient = {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": value}]}
    return MappedMessage(raw, (MappedResource(patient, (SYSTEM, value)),))


# -- source time ----------------------------------------------------------------------------------------------


def test_the_source_time_is_the_kafka_timestamp_or_the_replayed_original():
    assert source_time_ms(_message(0).message, NOW_MS) == NOW_MS
    first = RawMessage("patients", 0, 7, NOW_MS - 3_600_000, None, b"{}")
    from beam_pipeline.contracts.error_record import make_error_record

    record = make_error_record(
        stage="write", code="http_error", retryable=True, detail="x", raw=b"{}", **first.error_fields()
    )
    replayed = RawMessage("patients", 0, 99, NOW_MS, None, b"{}", tuple(replay_headers(record)))
    assert source_time_ms(replayed, NOW_MS) == NOW_MS - 3_600_000  # a late replay keeps its original time


@pytest.mark.parametrize("timestamp_ms", [-1, NOW_MS + 2 * 24 * 3600 * 1000, 253_402_300_800_000])
def test_a_source_time_that_cannot_be_trusted_does_not_guard_the_write(timestamp_ms):
    # A Kafka timestamp in the year 10000 must not shadow every later update of its patient.
    assert source_time_ms(_message(0, timestamp_ms=timestamp_ms).message, NOW_MS) is None


# -- credentials stay out of the pickled step ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bearer", "basic", "oauth2"])
def test_the_pickled_write_step_carries_the_secret_name_and_no_credential(kind):
    flags = {"fhir_base_url": "http://fhir.test/fhir", "fhir_auth": kind, "fhir_auth_secret_resource_name": SECRET_NAME}
    config = FhirStoreConfig.from_flags(flags)
    pickled = pickle.dumps(_WriteBundlesFn(config, "job"))
    assert SECRET_NAME.encode() in pickled
    for value in CREDENTIALS.values():
        assert value.encode() not in pickled


def test_the_write_step_refuses_credentials_in_its_config():
    config = FhirStoreConfig(base_url="http://fhir.test/fhir", auth=AuthConfig(kind="bearer", token="tok-3f1e"))
    with pytest.raises(ValueError, match="secret"):
        _WriteBundlesFn(config, "job")


# -- on the worker ----------------------------------------------------------------------------------------------


def _run(fn: _WriteBundlesFn, messages: list[MappedMessage]) -> tuple[list, list]:
    fn.start_bundle()
    out = [o for m in messages for o in fn.process(m, timestamp=0)] + list(fn.finish_bundle())
    written = [o.value for o in out if isinstance(o, WindowedValue)]
    failed = [o.value.value for o in out if not isinstance(o, WindowedValue) and o.tag == FAILED]
    return written, failed


def _tally(fn: _WriteBundlesFn, messages: list[MappedMessage]) -> dict[str, int]:
    fn.start_bundle()
    out = [o for m in messages for o in fn.process(m, timestamp=0)] + list(fn.finish_bundle())
    tally: dict[str, int] = {}
    for o in out:
        if not isinstance(o, WindowedValue) and o.tag == TALLY:
            name, n = o.value.value
            tally[name] = tally.get(name, 0) + n
    return tally


def test_the_worker_reads_the_secret_in_setup_and_again_when_it_is_due(store, monkeypatch):
    secret = {"token": "tok-1"}
    reads = []

    def read_secret(name):
        reads.append(name)
        return json.dumps(secret).encode()

    config = FhirStoreConfig.from_flags(
        {"fhir_base_url": "http://fhir.test/fhir", "fhir_auth": "bearer", "fhir_auth_secret_resource_name": SECRET_NAME}
    )
    fn = _WriteBundlesFn(config, "job", read_secret)
    clock = [1000.0]
    monkeypatch.setattr(write.time, "monotonic", lambda: clock[0])
    fn.setup()
    written, failed = _run(fn, [_message(0, "a")])
    assert len(written) == 1 and not failed and reads == [SECRET_NAME]
    assert store.authorizations[-1] == "Bearer tok-1"
    secret["token"] = "tok-2"  # rotated
    clock[0] += write.SECRET_REFRESH_SECONDS + 1
    _run(fn, [_message(1, "b")])
    assert reads == [SECRET_NAME] * 2 and store.authorizations[-1] == "Bearer tok-2"
    fn.teardown()


def test_an_unreadable_secret_leaves_the_messages_retryable(store):
    def read_secret(name):
        raise PermissionError("denied")

    config = FhirStoreConfig.from_flags(
        {"fhir_base_url": "http://fhir.test/fhir", "fhir_auth": "basic", "fhir_auth_secret_resource_name": SECRET_NAME}
    )
    fn = _WriteBundlesFn(config, "job", read_secret)
    fn.setup()  # does not raise: a failing setup() would stall the job
    written, failed = _run(fn, [_message(0, "a"), _message(1, "b")])
    assert not written and [(r.code, r.retryable) for r in failed] == [(errors.AUTH_ERROR, True)] * 2
    assert "denied" not in failed[0].detail and store.authorizations == []


def test_an_unexpected_exception_in_the_write_step_leaves_the_bundles_messages_retryable(store, monkeypatch):
    fn = _WriteBundlesFn(FhirStoreConfig(base_url="http://fhir.test/fhir"), "job")
    fn.setup()

    def explode(items):
        raise RuntimeError("Patient Jane Doe")  # not an HTTP answer; its text must not reach the record

    monkeypatch.setattr(fn._client, "write", explode)
    messages = [_message(i, f"v{i}") for i in range(3)]
    written, failed = _run(fn, messages)
    assert written == []
    assert [(r.source.offset, r.stage, r.code, r.retryable) for r in failed] == [
        (i, "write", errors.INTERNAL_ERROR, True) for i in range(3)
    ]
    assert all("Jane" not in r.detail for r in failed)
    fn.teardown()


def test_a_message_older_than_the_stored_data_is_settled_without_a_write(store):
    fn = _WriteBundlesFn(FhirStoreConfig(base_url="http://fhir.test/fhir"), "job")
    fn.setup()
    store.stored_source_time = NOW_MS + 1  # the store holds newer data for this patient
    written, failed = _run(fn, [_message(0, "a", timestamp_ms=NOW_MS)])
    assert [m.offset for m in written] == [0] and not failed and store.batches == 0
    store.stored_source_time = NOW_MS - 1  # older data: this message replaces it
    written, failed = _run(fn, [_message(1, "a", timestamp_ms=NOW_MS)])
    assert [m.offset for m in written] == [1] and not failed and store.batches == 1
    fn.teardown()


def test_the_write_steps_tally_is_what_it_counted_one_outcome_per_message(store, monkeypatch):
    fn = _WriteBundlesFn(FhirStoreConfig(base_url="http://fhir.test/fhir"), "job")
    fn.setup()
    store.stored_source_time = NOW_MS + 1  # newer data for every patient: each message superseded
    assert _tally(fn, [_message(0, "a", timestamp_ms=NOW_MS)]) == {
        "write_to_fhir_store/messages_superseded": 1,
        "write_to_fhir_store/resources_written": 1,
        "write_to_fhir_store/superseded": 1,
    }
    store.stored_source_time = None
    assert _tally(fn, [_message(1, "b", timestamp_ms=NOW_MS), _message(2, "c", timestamp_ms=NOW_MS)]) == {
        "write_to_fhir_store/messages_written": 2,
        "write_to_fhir_store/resources_written": 2,
        "write_to_fhir_store/resources_created": 2,
    }

    def explode(items):
        raise RuntimeError("boom")

    monkeypatch.setattr(fn._client, "write", explode)
    assert _tally(fn, [_message(2, "c")]) == {"write_to_fhir_store/messages_failed": 1}
    fn.teardown()


def test_a_settled_message_has_one_outcome_written_first_then_superseded_then_unchanged():
    from beam_pipeline.fhir_store import WriteOutcome
    from beam_pipeline.transforms.write import settled_as

    written = WriteOutcome(key=0, ok=True, status=201)
    superseded = WriteOutcome(key=0, ok=True, status=200, superseded=True)
    unchanged = WriteOutcome(key=0, ok=True, status=200, unchanged=True)
    assert settled_as([unchanged, superseded, written]) == "written"
    assert settled_as([unchanged, superseded]) == "superseded"
    assert settled_as([unchanged, unchanged]) == "unchanged"
    assert settled_as([]) == "unchanged"  # nothing to write: the store holds all of it already
