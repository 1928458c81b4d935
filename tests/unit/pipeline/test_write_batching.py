"""How WriteToFhirStore batches: the runner's bundle is buffered and written at its end (or as soon as it
fills every bundle in flight, on a thread, while the next group fills), tier by tier, and the metrics count
the batch bundles actually sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.utils.windowed_value import WindowedValue
from hypothesis import given
from hypothesis import strategies as st

from beam_pipeline.contracts.outcome import MappedResource
from beam_pipeline.fhir_store import FhirStoreConfig
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms import write
from beam_pipeline.transforms.parse_and_map import MappedMessage
from beam_pipeline.transforms.write import FAILED, WRITTEN, WriteToFhirStore, _WriteBundlesFn, tiers

pytestmark = pytest.mark.unit

TYPES = ["Patient", "Encounter", "Condition", "Observation", "Immunization"]


def _mapped_many(offset: int, resource_types: list[str]) -> MappedMessage:
    raw = RawMessage("t", 0, offset, 1_795_000_000_000, None, b"{}")
    return MappedMessage(
        raw,
        tuple(
            MappedResource({"resourceType": t, "identifier": [{"system": "urn:test", "value": f"{offset}-{k}"}]},
                           ("urn:test", f"{offset}-{k}"))
            for k, t in enumerate(resource_types)
        ),
    )  # fmt: skip


def _mapped(offset: int, resource_type: str = "Patient", n_resources: int = 1) -> MappedMessage:
    raw = RawMessage("t", 0, offset, 1_795_000_000_000, None, b"{}")
    idents = [("urn:test", f"{resource_type}-{offset}-{k}") for k in range(n_resources)]
    resources = tuple(
        MappedResource({"resourceType": resource_type, "identifier": [{"system": s, "value": v}]}, (s, v))
        for s, v in idents
    )
    return MappedMessage(raw, resources)


ORDER = {"Patient": 0, "Encounter": 1, "Condition": 2, "Observation": 2}


def _rank(resource: MappedResource) -> int:
    return ORDER.get(resource.resource["resourceType"], 3)


@given(st.lists(st.lists(st.sampled_from(TYPES), min_size=0, max_size=3), max_size=40))
def test_tiers_keep_every_resource_once_in_the_order_references_need(types_per_message):
    messages = [_mapped_many(i, types) for i, types in enumerate(types_per_message)]
    grouped = tiers(messages, ORDER)
    written = sorted((i, id(r)) for tier in grouped for i, r in tier)
    assert written == sorted((i, id(r)) for i, m in enumerate(messages) for r in m.resources)
    assert all(tier for tier in grouped)
    ranks = [_rank(tier[0][1]) for tier in grouped]
    assert ranks == sorted(set(ranks))  # one rank per tier, increasing
    assert all(len({_rank(r) for _, r in tier}) == 1 for tier in grouped)
    assert all([i for i, _ in tier] == sorted(i for i, _ in tier) for tier in grouped)


def test_a_message_that_writes_a_patient_and_its_encounter_writes_the_patient_first():
    message = _mapped_many(0, ["Encounter", "Patient"])
    assert [[r.resource["resourceType"] for _, r in tier] for tier in tiers([message], ORDER)] == [
        ["Patient"],
        ["Encounter"],
    ]


def test_the_shipped_order_is_derived_from_the_mappings_references():
    order = write.default_write_order()
    assert order["Patient"] == 0
    # An encounter refers to its patient, organization, clinician and location; the rows to their encounter.
    assert order["Encounter"] == 1 + max(order[t] for t in ("Patient", "Organization", "Practitioner", "Location"))
    assert {order[t] for t in ("Condition", "Observation", "Immunization", "MedicationRequest")} == {
        order["Encounter"] + 1
    }


def _messages(outputs: Iterable[Any]) -> list[WindowedValue]:
    """The messages settled (the main output), not the step's tally."""
    return [o for o in outputs if isinstance(o, WindowedValue)]


def _wait_for(condition: Any, timeout: float = 10.0) -> None:  # noqa: ANN401
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_full_group_is_sent_at_once_and_its_messages_leave_when_it_settles(store):
    config = FhirStoreConfig(base_url="http://fhir.test/fhir", bundle_size=2, max_bundles_in_flight=2)
    fn = _WriteBundlesFn(config, "job")
    fn.setup()
    fn.start_bundle()
    early = [_messages(fn.process(_mapped(i), timestamp=0)) for i in range(4)]
    assert early == [[], [], [], []]
    _wait_for(lambda: len(store.bundles) == 2)  # four fill both bundles in flight: sent before the bundle ends
    later = [_messages(fn.process(_mapped(i), timestamp=0)) for i in range(4, 12)]
    # The third full group waits for the first to settle, whose messages then leave the step, in order.
    assert [len(out) for out in later] == [0] * 7 + [4]
    assert [o.value.offset for o in later[-1]] == [0, 1, 2, 3]
    assert _messages(fn.process(_mapped(12), timestamp=0)) == []
    assert [o.value.offset for o in _messages(fn.finish_bundle())] == list(range(4, 13))
    assert sorted(len(b) for b in store.bundles) == [1] + [2] * 6
    fn.teardown()


def test_the_step_maps_the_next_group_while_the_store_writes_the_last(store):
    config = FhirStoreConfig(base_url="http://fhir.test/fhir", bundle_size=2, max_bundles_in_flight=2)
    store.gate = threading.Event()
    fn = _WriteBundlesFn(config, "job")
    fn.setup()
    fn.start_bundle()
    started = time.monotonic()
    for i in range(8):  # two groups: the first held by the store, the second waiting for its slots
        assert _messages(fn.process(_mapped(i), timestamp=0)) == []
    assert time.monotonic() - started < 5  # process() never waited for the store
    _wait_for(lambda: len(store.bundles) == 2)
    assert len(store.bundles) == 2  # the second group's bundles wait for the first's slots
    store.gate.set()
    assert [o.value.offset for o in _messages(fn.finish_bundle())] == list(range(8))
    assert len(store.bundles) == 4
    fn.teardown()


def test_patients_are_written_before_the_rows_that_refer_to_them(store):
    fn = _WriteBundlesFn(FhirStoreConfig(base_url="http://fhir.test/fhir", bundle_size=10), "job")
    fn.setup()
    fn.start_bundle()
    for i, t in enumerate(["Observation", "Encounter", "Patient", "Condition", "Patient"]):
        assert list(fn.process(_mapped(i, t), timestamp=0)) == []
    out = _messages(fn.finish_bundle())
    assert sorted(o.value.offset for o in out) == [0, 1, 2, 3, 4]
    assert store.bundles == [["Patient", "Patient"], ["Encounter"], ["Observation", "Condition"]]
    fn.teardown()


def test_the_metrics_count_the_bundles_actually_sent(store):
    config = FhirStoreConfig(base_url="http://fhir.test/fhir", bundle_size=3, max_bundles_in_flight=2)
    messages = [_mapped(i, "Patient" if i % 3 else "Observation", n_resources=1 + i % 2) for i in range(20)]
    pipeline = beam.Pipeline()
    results = pipeline | beam.Create(messages) | WriteToFhirStore(config, "job")
    _ = results[FAILED] | "NoFailures" >> beam.Map(lambda r: pytest.fail(f"unexpected failure {r.code}"))
    _ = results[WRITTEN] | beam.combiners.Count.Globally() | beam.Map(lambda n: n == len(messages) or pytest.fail(n))
    result = pipeline.run()
    result.wait_until_finish()
    sizes = result.metrics().query(MetricsFilter().with_name("bundle_size"))["distributions"]
    sent = result.metrics().query(MetricsFilter().with_name("bundles"))["counters"]
    resources = sum(len(m.resources) for m in messages)
    assert sum(d.committed.sum for d in sizes) == resources == sum(len(b) for b in store.bundles)
    assert sum(d.committed.count for d in sizes) == len(store.bundles) == sum(c.committed for c in sent)
    assert max(d.committed.max for d in sizes) <= config.bundle_size


def test_groups_of_a_runner_bundle_that_failed_never_leave_the_step_later(store):
    config = FhirStoreConfig(base_url="http://fhir.test/fhir", bundle_size=2, max_bundles_in_flight=2)
    fn = _WriteBundlesFn(config, "job")
    fn.setup()
    fn.start_bundle()
    for i in range(4):  # a full group sent; then the runner's bundle fails elsewhere: no finish_bundle
        assert _messages(fn.process(_mapped(i), timestamp=0)) == []
    fn.start_bundle()  # the runner retries those messages in a new bundle
    assert [o.value.offset for o in _messages(fn.process(_mapped(9), timestamp=0))] == []
    assert [o.value.offset for o in _messages(fn.finish_bundle())] == [9]
    fn.teardown()
