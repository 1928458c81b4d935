"""The drain signal a running job watches: only a marker written after the job was built stops it."""

from __future__ import annotations

from beam_pipeline.contracts.bucket_layout import drain_marker_name
from beam_pipeline.delivery.drain_signal import DrainSignal, marker_body, requested_at_ms


class _Blob:
    def __init__(self, store: dict[str, bytes], name: str) -> None:
        self.store, self.name = store, name

    def download_as_bytes(self, **_kwargs: object) -> bytes:
        from google.api_core.exceptions import NotFound

        if self.name not in self.store:
            raise NotFound("no marker")
        return self.store[self.name]


class _Storage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.reads = 0

    def bucket(self, name: str) -> _Storage:
        return self

    def blob(self, name: str) -> _Blob:
        self.reads += 1
        return _Blob(self.objects, name)


def test_only_a_marker_written_after_the_job_was_built_stops_it():
    storage = _Storage()
    signal = DrainSignal("gs://archive", "k2f", built_at_ms=1_000, client_factory=lambda: storage, poll_seconds=0)
    assert not signal.requested()
    storage.objects[drain_marker_name("k2f")] = marker_body(999)  # the drain before this launch
    assert not signal.requested()
    storage.objects[drain_marker_name("k2f")] = b"not json"
    assert not signal.requested()
    storage.objects[drain_marker_name("k2f")] = marker_body(1_001)
    assert signal.requested()
    del storage.objects[drain_marker_name("k2f")]
    assert signal.requested(), "a drain is never taken back within one job"


def test_the_signal_looks_at_most_once_per_poll_interval():
    storage = _Storage()
    signal = DrainSignal("archive", "k2f", built_at_ms=0, client_factory=lambda: storage, poll_seconds=3600)
    assert not signal.requested()  # the first look happens at once
    storage.objects[drain_marker_name("k2f")] = marker_body(5)
    assert not signal.requested(), "looked again within the poll interval"


def test_the_marker_body_round_trips():
    assert requested_at_ms(marker_body(123)) == 123
    assert requested_at_ms(b'{"requested_at_ms": true}') is None
    assert requested_at_ms(b"[]") is None
