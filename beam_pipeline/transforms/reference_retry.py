"""The job retries a row whose reference target has not arrived yet, before it becomes an error record.

RetryUnresolvedReferences sits between the failures and DeadLetter: a reference_not_found record whose
attempt the schedule covers is published to the retry topic (contracts/reference_retry.py) and settles
there; every other record, and any the retry topic refuses, goes on to DeadLetter. AwaitRetryDue holds a
message read back from the retry topic until its time, on the retry topic's own read, so the main topics'
messages never wait behind it. No Beam timer is involved (Prism loses timer output when it splits a
bundle, apache/beam#35771): the wait is the retry topic's, and a stopped job leaves it there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipeline.contracts.error_record import ErrorRecord
from beam_pipeline.contracts.kafka_secret import parse_kafka_secret
from beam_pipeline.contracts.reference_retry import RetrySchedule, retry_headers, wait_seconds
from beam_pipeline.delivery.drain_signal import POLL_SECONDS, DrainSignal
from beam_pipeline.delivery.ledger import Delivery
from beam_pipeline.fhir_store.errors import REFERENCE_NOT_FOUND
from beam_pipeline.kafka.connection import librdkafka_config
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.secret_manager import access_secret
from beam_pipeline.transforms.dead_letter import record_delivery

log = logging.getLogger(__name__)

NAMESPACE = "reference_retry"
DEFERRED = "deferred"
FLUSH_TIMEOUT_SECONDS = 30.0


class KafkaProducerFactory:
    """A confluent-kafka Producer for the connection in the Kafka secret, read on the worker (no credential
    in the job graph). Every message is acknowledged by all in-sync replicas before it counts as deferred."""

    def __init__(self, secret_resource_name: str, read_secret: Callable[[str], bytes] = access_secret) -> None:
        self._secret_resource_name = secret_resource_name
        self._read_secret = read_secret

    def __call__(self) -> Any:  # noqa: ANN401  (a confluent_kafka.Producer)
        from confluent_kafka import Producer

        connection = parse_kafka_secret(self._read_secret(self._secret_resource_name))
        return Producer(librdkafka_config(connection, {"acks": "all", "enable.idempotence": True}))


@dataclass(frozen=True)
class RetryResult:
    """What RetryUnresolvedReferences hands on: the records still to dead-letter, and the deliveries that
    settled by going to the retry topic (the offset commit hears of them)."""

    failed: beam.PCollection[ErrorRecord]
    deferred: beam.PCollection[Delivery]


class _DeferFn(beam.DoFn):
    """Buffers the runner bundle's retryable reference_not_found records and publishes them at its end, one
    flush for the bundle; a record Kafka did not take goes on as a failure, so nothing is lost."""

    def __init__(self, topic: str, schedule: RetrySchedule, producer_factory: Callable[[], Any]) -> None:
        self._topic = topic
        self._schedule = schedule
        self._producer_factory = producer_factory
        self._deferred = beam.metrics.Metrics.counter(NAMESPACE, "deferred")
        self._refused = beam.metrics.Metrics.counter(NAMESPACE, "refused_by_retry_topic")
        self._exhausted = beam.metrics.Metrics.counter(NAMESPACE, "dead_lettered_after_retries")

    def setup(self) -> None:
        self._producer: Any = None
        self._partitions = 0

    def start_bundle(self) -> None:
        self._pending: list[tuple[ErrorRecord, int, Delivery, WindowedValue]] = []

    def process(
        self,
        record: ErrorRecord,
        timestamp: Any = beam.DoFn.TimestampParam,  # noqa: ANN401, B008
        window: Any = beam.DoFn.WindowParam,  # noqa: ANN401, B008
    ) -> Iterable[ErrorRecord]:
        delay = self._schedule.delay_for(record.job_retries)
        delivery = record_delivery(record)
        if record.code != REFERENCE_NOT_FOUND or not record.retryable or delivery is None:
            yield record
        elif delay is None:
            self._exhausted.inc()
            yield record
        else:
            self._pending.append((record, delay, delivery, WindowedValue(record, timestamp, (window,))))

    def finish_bundle(self) -> Iterable[Any]:
        pending, self._pending = self._pending, []
        if not pending:
            return
        refused: set[int] = set()
        try:
            producer = self._client()
            for n, (record, delay, *_) in enumerate(pending):
                self._produce(producer, n, record, delay, refused)
            undelivered = producer.flush(FLUSH_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001  (Kafka unreachable: every record is dead-lettered instead)
            log.warning("retry topic unavailable (%s): %d record(s) dead-lettered", type(exc).__name__, len(pending))
            undelivered, refused = len(pending), set(range(len(pending)))
            self._producer = None
        if undelivered:
            # flush() says how many, not which: none of this bundle counts as deferred. A record that did reach
            # the topic is then written twice at worst, which the conditional write absorbs.
            refused = set(range(len(pending)))
            self._producer = None
        for n, (_record, _delay, delivery, wv) in enumerate(pending):
            if n in refused:
                self._refused.inc()
                yield wv
            else:
                self._deferred.inc()
                yield pvalue.TaggedOutput(DEFERRED, wv.with_value(delivery))

    def _client(self) -> Any:  # noqa: ANN401
        if self._producer is None:
            self._producer = self._producer_factory()
            metadata = self._producer.list_topics(self._topic, timeout=FLUSH_TIMEOUT_SECONDS)
            topic = metadata.topics.get(self._topic)
            self._partitions = len(topic.partitions) if topic is not None and topic.partitions else 1
        return self._producer

    def _produce(self, producer: Any, n: int, record: ErrorRecord, delay: int, refused: set[int]) -> None:  # noqa: ANN401
        def done(err: Any, _msg: Any) -> None:  # noqa: ANN401
            if err is not None:
                refused.add(n)

        for tries in (1, 2):
            try:
                producer.produce(
                    self._topic,
                    value=record.raw_payload(),
                    key=record.source.key_bytes(),
                    headers=retry_headers(record, delay),
                    partition=RetrySchedule.partition_for(record.job_retries, self._partitions),
                    on_delivery=done,
                )
            except BufferError:  # the producer's queue is full: empty it once, then give the record up
                if tries == 2:
                    refused.add(n)
                producer.flush(FLUSH_TIMEOUT_SECONDS)
                continue
            except Exception:  # noqa: BLE001  (produce refuses some records at once, e.g. too large)
                refused.add(n)
            break
        producer.poll(0)


class RetryUnresolvedReferences(beam.PTransform):
    """ErrorRecord -> RetryResult: reference_not_found records within the schedule go to the retry topic."""

    def __init__(self, topic: str, schedule: RetrySchedule, producer_factory: Callable[[], Any]) -> None:
        super().__init__()
        self._topic = topic
        self._schedule = schedule
        self._producer_factory = producer_factory

    def expand(self, records: beam.PCollection[ErrorRecord]) -> RetryResult:
        out = records | "PublishToRetryTopic" >> beam.ParDo(
            _DeferFn(self._topic, self._schedule, self._producer_factory)
        ).with_outputs(DEFERRED, main="failed")
        return RetryResult(failed=out.failed, deferred=out[DEFERRED])


class _AwaitDueFn(beam.DoFn):
    def __init__(self, drain: DrainSignal | None, sleep: Callable[[float], None]) -> None:
        self._drain = drain
        self._sleep = sleep
        self._waited = beam.metrics.Metrics.counter(NAMESPACE, "waited_ms")
        self._redelivered = beam.metrics.Metrics.counter(NAMESPACE, "read_back")
        self._held = beam.metrics.Metrics.counter(NAMESPACE, "left_for_next_job")

    def process(self, message: RawMessage) -> Iterable[RawMessage]:
        left = wait_seconds(message.headers)
        self._waited.inc(int(left * 1000))
        while True:
            if self._drain is not None and self._drain.requested():
                # A drain does not wait out a delay: never settled, the message stays in the retry topic for
                # the next job (as the read step's StopAtDrain leaves the main topics' messages).
                self._held.inc()
                return
            if left <= 0:
                break
            step = min(left, POLL_SECONDS)
            self._sleep(step)
            left -= step
        self._redelivered.inc()
        yield message


class AwaitRetryDue(beam.PTransform):
    """RawMessage read from the retry topic -> the same message once its not-before time has come; with a
    drain signal, none once a local drain is asked for."""

    def __init__(self, drain: DrainSignal | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        self._drain = drain
        self._sleep = sleep

    def expand(self, messages: beam.PCollection[RawMessage]) -> beam.PCollection[RawMessage]:
        return messages | "WaitUntilDue" >> beam.ParDo(_AwaitDueFn(self._drain, self._sleep)).with_output_types(
            RawMessage
        )
