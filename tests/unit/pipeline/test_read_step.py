"""ReadFromKafka hands KafkaIO the polling timeout from --kafka_poll_timeout_seconds: it bounds how long a
read message waits before the next steps see it."""

from __future__ import annotations

import apache_beam as beam
import pytest

from beam_pipeline.job_flags import KafkaToFhirOptions
from beam_pipeline.transforms import read

pytestmark = pytest.mark.unit


def test_the_poll_timeout_reaches_kafkaio(monkeypatch):
    seen = {}

    class Recorder(beam.PTransform):
        def __init__(self, **kwargs):
            super().__init__()
            seen.update(kwargs)

        def expand(self, pbegin):
            return pbegin | beam.Create([])

    monkeypatch.setattr(read, "_KafkaIORead", Recorder)
    with beam.Pipeline() as p:
        _ = p | read.ReadFromKafka({"bootstrap.servers": "x"}, ["t"], "localhost:1", poll_timeout_seconds=3)
    assert seen["consumer_polling_timeout"] == 3


def test_the_poll_timeout_defaults_to_one_second_and_refuses_less():
    opts = beam.options.pipeline_options.PipelineOptions([]).view_as(KafkaToFhirOptions)
    assert opts.kafka_poll_timeout_seconds == 1
    with pytest.raises(ValueError, match="at least 1 second"):
        read.ReadFromKafka({}, ["t"], "localhost:1", poll_timeout_seconds=0)
