"""The elements crossing a shuffle travel with their registered coders, not pickled: the
round trip keeps every field, equal values encode to equal bytes, and the write step's Reshuffle and the
parse and map steps' outputs are given them."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import pytest
from apache_beam import coders
from apache_beam.runners import pipeline_context

from beam_pipeline.contracts.outcome import MappedResource
from beam_pipeline.fhir_store import FhirStoreConfig
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.coders import MappedMessageCoder, RawMessageCoder
from beam_pipeline.transforms.elements import MappedMessage
from beam_pipeline.transforms.write import WriteToFhirStore

pytestmark = pytest.mark.unit

SYSTEM = "urn:k2f-test:coders"


def _raw(key: bytes | None = b"k\x00", headers=(("k2f-attempt", b"2"), ("empty", b""))) -> RawMessage:
    return RawMessage("patients", 3, 2**40, -1, key, '{"Id": "é"}'.encode(), headers)


def _mapped() -> MappedMessage:
    patient = {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": "a|b,c$"}], "x": 1.5}
    observation = {"resourceType": "Observation", "valueQuantity": {"value": 120, "unit": "mm[Hg]"}, "n": None}
    return MappedMessage(_raw(), (MappedResource(patient, (SYSTEM, "a|b,c$")), MappedResource(observation, None)))


@pytest.mark.parametrize("message", [_raw(), _raw(key=None, headers=())])
def test_a_raw_message_round_trips(message):
    coder = RawMessageCoder()
    assert coder.decode(coder.encode(message)) == message
    assert not coder.is_deterministic()  # the rare pickled fallback (coders.py); no step keys by them


def test_a_mapped_message_round_trips_and_equal_resources_encode_alike():
    coder = MappedMessageCoder()
    message = _mapped()
    assert coder.decode(coder.encode(message)) == message
    # The same resource built in another key order is the same bytes.
    reordered = dict(reversed(list(message.resources[0].resource.items())))
    other = MappedMessage(message.message, (MappedResource(reordered, message.resources[0].identifier),))
    first = MappedMessage(message.message, message.resources[:1])
    assert coder.encode(other) == coder.encode(first)
    assert not coder.is_deterministic()  # the rare pickled fallback (coders.py); no step keys by them


def test_the_registry_gives_the_types_their_coders():
    assert isinstance(coders.registry.get_coder(RawMessage), RawMessageCoder)
    assert isinstance(coders.registry.get_coder(MappedMessage), MappedMessageCoder)


def _coders_under(pipeline: beam.Pipeline, label: str) -> set[type]:
    """The coder classes (with their components) of every PCollection produced under `label`."""
    proto = pipeline.to_runner_api()
    context = pipeline_context.PipelineContext(proto.components)
    found: set[type] = set()

    def walk(coder: coders.Coder) -> None:
        found.add(type(coder))
        for component in coder._get_component_coders():  # noqa: SLF001  (Beam's own accessor)
            walk(component)

    for transform in proto.components.transforms.values():
        if label in transform.unique_name:
            for pcoll_id in transform.outputs.values():
                walk(context.coders.get_by_id(proto.components.pcollections[pcoll_id].coder_id))
    return found


def test_the_write_steps_reshuffle_carries_mapped_messages_with_their_coder():
    pipeline = beam.Pipeline()
    untyped = pipeline | beam.Create([_mapped()]) | "Untyped" >> beam.Map(lambda m: m).with_output_types(Any)
    _ = untyped | "Write" >> WriteToFhirStore(FhirStoreConfig(base_url="http://fhir.test/fhir"), "job", write_order={})
    found = _coders_under(pipeline, "SpreadOverWorkers")
    assert MappedMessageCoder in found
    assert coders.PickleCoder not in found


def test_the_whole_graph_after_the_read_builds_with_the_registered_coders():
    from beam_pipeline.dataflow_kafka_to_fhirstore import JobSettings, build_steps
    from beam_pipeline.us_core import TransformConfig

    pipeline = beam.Pipeline()
    messages = pipeline | beam.Create([_raw()]) | "Untyped" >> beam.Map(lambda m: m).with_output_types(Any)
    settings = JobSettings(
        "job", "archive", "errors", 5, FhirStoreConfig(base_url="http://fhir.test/fhir"), TransformConfig()
    )
    steps = build_steps(messages, settings)
    # The keys the entry point and the reprocess entry point read.
    assert set(steps) == {"written", "failed", "filtered", "archived", "dead_lettered", "deferred", "write_tally"}
    assert MappedMessageCoder in _coders_under(pipeline, "MapToFhir")
    assert RawMessageCoder in _coders_under(pipeline, "ParseAndValidate")
    assert RawMessageCoder in _coders_under(pipeline, "WriteBundles")


def test_text_utf8_cannot_carry_goes_pickled_and_comes_back():
    # A coder that raised would fail the runner's whole bundle; the write step then fails that message alone.
    message = RawMessage("t", 0, 7, 1, None, b"{}", (("h", b"v"),))
    poisoned = MappedMessage(message, (MappedResource({"name": [{"family": "Lone\ud800Surrogate"}]}, ("s", "v")),))
    coder = MappedMessageCoder()
    assert coder.decode(coder.encode(poisoned)) == poisoned
    assert coder.encode(poisoned)[:1] != coder.encode(MappedMessage(message, ()))[:1]
