"""How WriteToFhirStore cuts its batch bundles: by resource identity, then by bundle size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.write import MappedMessage, shard_key, split_into_bundles

pytestmark = pytest.mark.unit


def _mapped(offset: int, source_id: str | None) -> MappedMessage:
    raw = RawMessage("patients", 0, offset, 1_795_000_000_000, None, b"{}")
    identifier = ("urn:test", source_id) if source_id else None
    return MappedMessage(raw, (({"resourceType": "Patient"}, identifier),))


@given(st.integers(min_value=0, max_value=600), st.integers(min_value=1, max_value=250))
def test_split_keeps_every_message_once_in_order_and_no_bundle_is_too_big(n, bundle_size):
    messages = [_mapped(i, f"p{i}") for i in range(n)]
    bundles = list(split_into_bundles((5, iter(messages)), bundle_size))
    assert [m for _, chunk in bundles for m in chunk] == messages
    assert all(key == 5 and 0 < len(chunk) <= bundle_size for key, chunk in bundles)
    assert len(bundles) == -(-n // bundle_size)


def test_every_message_about_one_patient_gets_one_key():
    keys = {shard_key(_mapped(offset, "same-patient"), 8) for offset in range(50)}
    assert len(keys) == 1
    spread = {shard_key(_mapped(i, f"p{i}"), 8) for i in range(200)}
    assert spread == set(range(8))


def test_messages_without_an_identifier_are_keyed_by_their_partition():
    a = _mapped(1, None)
    b = RawMessage("patients", 3, 1, 1_795_000_000_000, None, b"{}")
    assert shard_key(a, 8) == shard_key(_mapped(99, None), 8)
    assert 0 <= shard_key(MappedMessage(b, a.resources), 8) < 8


@given(st.text(), st.text(), st.integers(min_value=1, max_value=64))
def test_any_identifier_gets_a_key_in_range(system, value, shards):
    # Lone surrogates included: a key is computed before the client judges the identifier.
    raw = RawMessage("patients", 0, 1, 1_795_000_000_000, None, b"{}")
    assert 0 <= shard_key(MappedMessage(raw, (({"resourceType": "Patient"}, (system, value)),)), shards) < shards


def _clinical(offset: int, resource_type: str, patient: str, own_id: str) -> MappedMessage:
    raw = RawMessage("clinical", 0, offset, 1_795_000_000_000, None, b"{}")
    field = "patient" if resource_type in ("Immunization", "AllergyIntolerance") else "subject"
    resource = {"resourceType": resource_type, field: {"reference": f"Patient?identifier=urn%3Atest|{patient}"}}
    return MappedMessage(raw, ((resource, ("urn:natural", own_id)),))


def test_a_patient_and_the_rows_about_it_share_a_key():
    patient = _mapped(0, "p-1")
    rows = [_clinical(i, t, "p-1", f"row-{i}") for i, t in enumerate(["Encounter", "Condition", "Immunization"], 1)]
    assert {shard_key(m, 64) for m in [patient, *rows]} == {shard_key(patient, 64)}
    # Other patients' rows spread over the keys.
    assert len({shard_key(_clinical(i, "Condition", f"p-{i}", "x"), 64) for i in range(200)}) > 32


def test_within_a_bundle_patients_go_first_then_encounters_then_the_rest():
    condition = _clinical(1, "Condition", "p-1", "c")
    encounter = _clinical(2, "Encounter", "p-1", "e")
    patient = _mapped(3, "p-1")
    observation = _clinical(4, "Observation", "p-1", "o")
    [(_, chunk)] = split_into_bundles((1, iter([condition, encounter, observation, patient])), 10)
    assert chunk == [patient, encounter, condition, observation]
