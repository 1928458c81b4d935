"""ReadKafkaMessages: the cross-language KafkaIO read Dataflow runs, with metadata, into RawMessage.

The job applies it under the label "ReadFromKafka", the step name its graph has always shown; the class
has its own name so that it does not shadow Beam's ReadFromKafka, which it wraps."""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
from apache_beam.io.kafka import ReadFromKafka as _KafkaIORead

from beam_pipeline.delivery.drain_signal import DrainSignal
from beam_pipeline.kafka.expansion import kafka_expansion_service
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms import coders  # noqa: F401  (registers RawMessage's coder)


class _StopAtDrainFn(beam.DoFn):
    """Passes messages on until a drain is asked for (the local drain), then holds every new one back."""

    def __init__(self, drain: DrainSignal) -> None:
        self._drain = drain
        self._held = beam.metrics.Metrics.counter("read_from_kafka", "left_for_next_job")

    def process(self, message: RawMessage) -> Iterable[RawMessage]:
        if self._drain.requested():
            # Never settled, so its offset is never committed: the next job reads it.
            self._held.inc()
            return
        yield message


class ReadKafkaMessages(beam.PTransform):
    """Kafka records with their coordinates -> RawMessage.

    KafkaIO commits nothing: the job commits its consumer group's offsets itself once messages have
    settled (transforms/commit_offsets.py), so a job that stops in any way leaves what it held to the next.
    With a drain signal, the step stops passing messages on once a local drain is asked for.
    """

    def __init__(
        self,
        consumer_config: dict[str, str],
        topics: list[str],
        expansion_service: str | None = None,
        max_num_records: int | None = None,
        drain: DrainSignal | None = None,
    ) -> None:
        super().__init__()
        self._consumer_config = consumer_config
        self._topics = topics
        # Without a running expansion service (the local stack's), Beam's own, told which Kafka read to use.
        self._expansion_service = expansion_service or kafka_expansion_service(consumer_config)
        self._max_num_records = max_num_records
        self._drain = drain

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[RawMessage]:
        messages = (
            pbegin
            | "KafkaIO"
            >> _KafkaIORead(
                consumer_config=self._consumer_config,
                topics=self._topics,
                with_metadata=True,
                # Committed after the outcome instead, by CommitOffsets.
                commit_offset_in_finalize=False,
                # Processing time never makes a record late, so windows drop nothing; the record's own
                # Kafka timestamp still names the date partition of its archive line.
                timestamp_policy="ProcessingTime",
                max_num_records=self._max_num_records,
                # consumer_polling_timeout stays Beam's default: it belongs to the SDF read, and the reader
                # the expansion service is told to use (KAFKA_READ_EXPERIMENT) refuses any other value.
                expansion_service=self._expansion_service,
            )
            | "ToRawMessage" >> beam.Map(RawMessage.from_kafka).with_output_types(RawMessage)
        )
        if self._drain is None:
            return messages
        return messages | "StopAtDrain" >> beam.ParDo(_StopAtDrainFn(self._drain)).with_output_types(RawMessage)
