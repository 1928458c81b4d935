"""Bundles in flight shared by clients: the write step's clients of one worker process together send at most
max_bundles_in_flight bundles to a store at once (transforms/write.store_slots), however many bundles the
runner processes in parallel."""

from __future__ import annotations

import threading

import pytest
from fhir_fakes import SYSTEM, patient

from beam_pipeline.fhir_store import FhirStoreConfig, WriteItem
from beam_pipeline.transforms.write import store_slots


def _items(prefix: str, n: int) -> list[WriteItem]:
    return [WriteItem(patient(f"{prefix}{i}", "Slot"), (SYSTEM, f"{prefix}{i}")) for i in range(n)]


@pytest.mark.parametrize("shared", [True, False])
def test_clients_sharing_slots_never_send_more_bundles_at_once_than_one_client_may(server, make_client, shared):
    server.delay = 0.2  # long enough for the clients' bundles to overlap
    slots = threading.BoundedSemaphore(2) if shared else None
    clients = [make_client(bundle_size=1, max_bundles_in_flight=2, slots=slots) for _ in range(2)]
    outcomes: list = []
    threads = [
        threading.Thread(target=lambda c=c, p=p: outcomes.extend(c.write(_items(p, 4))))
        for c, p in zip(clients, "AB", strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 8 and all(o.ok for o in outcomes)
    # Shared: two at once at most. Not shared: each client's two, so more than two at some moment.
    assert (server.max_in_flight <= 2) is shared


def test_the_write_steps_clients_of_one_store_share_one_semaphore():
    a = FhirStoreConfig(base_url="http://fhir.test/fhir", max_bundles_in_flight=3)
    b = FhirStoreConfig(base_url="http://other.test/fhir", max_bundles_in_flight=3)
    assert store_slots(a) is store_slots(FhirStoreConfig(base_url="http://fhir.test/fhir", max_bundles_in_flight=3))
    assert store_slots(a) is not store_slots(b)
