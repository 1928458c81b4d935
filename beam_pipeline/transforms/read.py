"""ReadFromKafka: the cross-language KafkaIO read Dataflow runs, with metadata, into RawMessage."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.kafka import ReadFromKafka as _KafkaIORead

from beam_pipeline.kafka.expansion import kafka_expansion_service
from beam_pipeline.raw_message import RawMessage


class ReadFromKafka(beam.PTransform):
    """Kafka records with their coordinates -> RawMessage.

    Offsets are committed to the consumer group as Beam finalizes each checkpoint, so a cancelled and
    restarted job resumes where the last finalized bundle ended; the idempotent FHIR write absorbs the
    messages between that point and the crash.
    """

    def __init__(
        self,
        consumer_config: dict[str, str],
        topics: list[str],
        expansion_service: str | None = None,
        max_num_records: int | None = None,
    ) -> None:
        super().__init__()
        self._consumer_config = consumer_config
        self._topics = topics
        # Without a running expansion service (the local stack's), Beam's own, told which Kafka read to use.
        self._expansion_service = expansion_service or kafka_expansion_service(consumer_config)
        self._max_num_records = max_num_records

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[RawMessage]:
        return (
            pbegin
            | "KafkaIO"
            >> _KafkaIORead(
                consumer_config=self._consumer_config,
                topics=self._topics,
                with_metadata=True,
                commit_offset_in_finalize=True,
                # Processing time never makes a record late, so windows drop nothing; the record's own
                # Kafka timestamp still names the date partition of its archive line.
                timestamp_policy="ProcessingTime",
                max_num_records=self._max_num_records,
                # consumer_polling_timeout stays Beam's default: it belongs to the SDF read, and the reader
                # the expansion service is told to use (KAFKA_READ_EXPERIMENT) refuses any other value.
                expansion_service=self._expansion_service,
            )
            | "ToRawMessage" >> beam.Map(RawMessage.from_kafka)
        )
