"""ReadFromKafka's KafkaIO settings: the ones the reader KAFKA_READ_EXPERIMENT selects accepts, and offsets
committed as Beam finalizes."""

from __future__ import annotations

import apache_beam as beam
import pytest

from beam_pipeline.transforms import read

pytestmark = pytest.mark.unit


def _kafkaio_arguments(monkeypatch) -> dict:
    seen: dict = {}

    class Recorder(beam.PTransform):
        def __init__(self, **arguments):
            super().__init__()
            seen.update(arguments)

        def expand(self, pbegin):
            return pbegin | beam.Create([])

    monkeypatch.setattr(read, "_KafkaIORead", Recorder)
    with beam.Pipeline() as p:
        _ = p | read.ReadKafkaMessages({"bootstrap.servers": "x"}, ["t"], "localhost:1")
    return seen


def test_the_polling_timeout_is_left_to_beam_because_the_unbounded_reader_refuses_any_other(monkeypatch):
    # KafkaIO: "The current Kafka read configuration isn't supported by the LEGACY read implementation!
    # Conflicting properties: [CONSUMER_POLLING_TIMEOUT]" for anything but its default.
    assert "consumer_polling_timeout" not in _kafkaio_arguments(monkeypatch)


def test_kafkaio_commits_nothing_and_reads_with_metadata_and_processing_time(monkeypatch):
    seen = _kafkaio_arguments(monkeypatch)
    # Offsets move only after the outcome (CommitOffsets), never as Beam finalizes the read's bundle.
    assert seen["commit_offset_in_finalize"] is False
    assert seen["with_metadata"] is True and seen["timestamp_policy"] == "ProcessingTime"
    assert seen["expansion_service"] == "localhost:1" and seen["topics"] == ["t"]


def test_the_step_has_its_own_name_and_does_not_shadow_beams():
    # Beam's ReadFromKafka is what the step wraps; ours has a name of its own.
    assert not hasattr(read, "ReadFromKafka")
    assert read._KafkaIORead.__name__ == "ReadFromKafka" and read._KafkaIORead is not read.ReadKafkaMessages
