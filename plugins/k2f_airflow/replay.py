"""Error replay: retryable error records go back to Kafka, the others to quarantine.

Every object under errors/ in the error bucket holds records no replay has handled yet (a handled object
leaves errors/), so "written since the last successful replay" needs no bookmark. Per object, in order:
1. parse its records (beam_pipeline.contracts.error_record, the one contract); skip those whose record_id is
   already in the object's replayed/ twin (handled by an earlier run that did not finish the move);
2. publish the retryable ones below the attempt cap to their topic (or the retry topic) with headers
   carrying the next attempt number and the original coordinates, then flush and check every delivery;
3. write the replayed/ and quarantine/ twins (same relative name, merged with what is there);
4. delete the source only if it is still the generation that was read.
A crash before 4 repeats at most the records of the object in flight, and the pipeline's idempotent
write absorbs that repeat; a crash after 3 repeats nothing, since step 1 then skips them.

One object never stops the others: an object that cannot be read as error records is moved whole to its
quarantine/ twin with the reason in the object's metadata; a record the broker refuses for good (too
large, an unknown or forbidden topic) goes to quarantine/ with the broker's error name as its reason; an
object whose publish did not complete for a passing cause (the broker unreachable) stays under errors/
for the next run, and the run fails at its end, after every other object, so the task alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from beam_pipeline.contracts.bucket_layout import ERRORS_PREFIX, QUARANTINE_PREFIX, REPLAYED_PREFIX, twin_name
from beam_pipeline.contracts.error_record import from_json, replay_headers

log = logging.getLogger(__name__)


class ReplayError(Exception):
    """Publishing did not complete; the object stays under errors/ for the next run."""


# Broker answers that the same record will get again (confluent_kafka KafkaError names).
PERMANENT_PUBLISH_ERRORS = frozenset(
    {
        "MSG_SIZE_TOO_LARGE",
        "_MSG_SIZE_TOO_LARGE",
        "RECORD_LIST_TOO_LARGE",
        "INVALID_RECORD",
        "UNKNOWN_TOPIC_OR_PART",
        "_UNKNOWN_TOPIC",
        "TOPIC_AUTHORIZATION_FAILED",
        "TOPIC_EXCEPTION",
        "INVALID_MSG",
    }
)
REASON_METADATA = "k2f-quarantine-reason"


@dataclass
class ReplayCounts:
    objects: int = 0
    replayed: int = 0
    quarantined: int = 0
    capped: int = 0
    already_replayed: int = 0
    unreadable: int = 0
    unpublishable: int = 0
    objects_unreadable: int = 0
    objects_failed: int = 0
    objects_left: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        topics = ", ".join(f"{t}: {n}" for t, n in sorted(self.by_topic.items())) or "none"
        return (
            f"{self.objects} error object(s): {self.replayed} record(s) replayed ({topics}), "
            f"{self.quarantined} quarantined ({self.capped} at the attempt cap, {self.unreadable} unreadable, "
            f"{self.unpublishable} refused by the broker), {self.already_replayed} already replayed earlier; "
            f"{self.objects_unreadable} unreadable object(s) quarantined whole, {self.objects_failed} left after a "
            f"failed publish; {self.objects_left} object(s) left for the next run"
        )


class ErrorReplayer:
    """Replays the error objects of one bucket through one producer; see the module doc for the order."""

    def __init__(
        self,
        bucket: Any,
        producer: Any,
        *,
        max_attempts: int,
        retry_topic: str = "",
        flush_timeout: float = 60.0,
    ) -> None:
        self.bucket = bucket
        self.producer = producer
        self.max_attempts = max_attempts
        self.retry_topic = retry_topic
        self.flush_timeout = flush_timeout
        self.source_prefix = ERRORS_PREFIX
        # Records published by this run: a record is at least once in the bucket (a job that stopped before
        # committing past a message writes its record again when the next job reads it), replayed once.
        self._published: set[str] = set()

    def run(self, prefix: str | None = None, max_objects: int = 200) -> ReplayCounts:
        """Replay the objects under `prefix` (default: all of errors/), at most `max_objects` of them."""
        counts = ReplayCounts()
        listed = self.bucket.list_blobs(prefix=prefix or f"{self.source_prefix}/")
        blobs = sorted(listed, key=lambda b: b.name)
        counts.objects_left = max(0, len(blobs) - max_objects)
        failures: list[str] = []
        for blob in blobs[:max_objects]:
            counts.objects += 1
            try:
                self.replay_object(blob, counts)
            except ReplayError as exc:
                counts.objects_failed += 1
                failures.append(str(exc))
                log.warning("publishing %s did not complete (%s); it stays for the next run", blob.name, exc)
            except UnicodeDecodeError as exc:  # not text: no record in it can be read
                self._quarantine_object(blob, f"unreadable: {type(exc).__name__}", counts)
        if failures:
            raise ReplayError(
                f"{len(failures)} object(s) stay for the next run ({'; '.join(sorted(set(failures)))}); "
                f"the rest: {counts.summary()}"
            )
        return counts

    def _quarantine_object(self, blob: Any, reason: str, counts: ReplayCounts) -> None:
        """Move a whole object to its quarantine/ twin, byte for byte, with the reason in its metadata."""
        generation = blob.generation
        target = self.bucket.blob(twin_name(blob.name, QUARANTINE_PREFIX, self.source_prefix))
        target.metadata = {REASON_METADATA: reason}
        target.upload_from_string(blob.download_as_bytes(), content_type="application/octet-stream")
        counts.objects_unreadable += 1
        log.warning("quarantined object %s whole: %s", blob.name, reason)
        self._delete_if_unchanged(blob, generation)

    def replay_object(self, blob: Any, counts: ReplayCounts) -> None:
        blob.reload()  # the generation the delete in step 4 is conditional on
        generation = blob.generation
        lines = [line for line in blob.download_as_bytes().decode("utf-8").splitlines() if line.strip()]
        replayed_name = twin_name(blob.name, REPLAYED_PREFIX, self.source_prefix)
        done_before = {_record_id(line) for line in self._lines(replayed_name)}
        to_publish, replayed_lines, quarantine_lines = [], [], []
        for line in lines:
            try:
                record = from_json(line)
            except (ValueError, TypeError, KeyError):
                counts.unreadable += 1
                quarantine_lines.append(line)
                continue
            if not record.retryable or record.attempt >= self.max_attempts:
                counts.capped += int(record.retryable)
                reason = "attempt cap" if record.retryable else "not retryable"
                quarantine_lines.append(_with_reason(line, reason))
                continue
            replayed_lines.append(line)
            if record.record_id in done_before or record.record_id in self._published:
                counts.already_replayed += 1
            else:
                self._published.add(record.record_id)
                to_publish.append(record)
        try:
            refused = self._publish(to_publish, counts)
        except ReplayError:
            self._published.difference_update(r.record_id for r in to_publish)
            raise
        if refused:
            # Refused for good by the broker: to quarantine, with the broker's error name as the reason.
            keep = [line for line in replayed_lines if _record_id(line) not in refused]
            for line in replayed_lines:
                record_id = _record_id(line)
                if record_id in refused:
                    quarantine_lines.append(_with_reason(line, f"unpublishable: {refused[record_id]}"))
            replayed_lines = keep
            counts.unpublishable += len(refused)
        self._merge(replayed_name, replayed_lines)
        self._merge(twin_name(blob.name, QUARANTINE_PREFIX, self.source_prefix), quarantine_lines)
        counts.quarantined += len(quarantine_lines)
        self._delete_if_unchanged(blob, generation)

    def _publish(self, records: list[Any], counts: ReplayCounts) -> dict[str, str]:
        """Publish and flush; {record_id: broker error name} of the records refused for good. Raises
        ReplayError when a delivery did not complete for a passing cause (nothing is moved then)."""
        if not records:
            return {}
        errors: dict[str, str] = {}

        def on_delivery(record_id: str) -> Any:  # noqa: ANN401
            def done(err: Any, _msg: Any) -> None:
                if err is not None:
                    errors[record_id] = str(err.name() if hasattr(err, "name") else err)

            return done

        for record in records:
            topic = self.retry_topic or record.source.topic
            key = record.source.key_bytes()  # byte for byte, a non-UTF-8 key included
            try:
                self.producer.produce(
                    topic,
                    value=record.raw_payload(),
                    key=key,
                    headers=replay_headers(record),
                    on_delivery=on_delivery(record.record_id),
                )
            except BufferError:
                raise ReplayError("the producer's queue is full") from None
            except Exception as exc:  # noqa: BLE001  (produce refuses some records at once, e.g. too large)
                errors[record.record_id] = _error_name(exc)
            self.producer.poll(0)
        remaining = self.producer.flush(self.flush_timeout)
        passing = {rid: name for rid, name in errors.items() if name not in PERMANENT_PUBLISH_ERRORS}
        if remaining or passing:
            # Kafka error names only (e.g. _MSG_TIMED_OUT): never the payload.
            names = ", ".join(sorted(set(passing.values())))
            raise ReplayError(f"{remaining} message(s) undelivered, {len(passing)} failed ({names})")
        refused = {rid: name for rid, name in errors.items() if name in PERMANENT_PUBLISH_ERRORS}
        delivered = [r for r in records if r.record_id not in refused]
        counts.replayed += len(delivered)
        for record in delivered:
            topic = self.retry_topic or record.source.topic
            counts.by_topic[topic] = counts.by_topic.get(topic, 0) + 1
        return refused

    def _lines(self, name: str) -> list[str]:
        from google.api_core import exceptions

        try:
            data = self.bucket.blob(name).download_as_bytes()
        except exceptions.NotFound:
            return []
        return [line for line in data.decode("utf-8").splitlines() if line.strip()]

    def _merge(self, name: str, lines: Iterable[str]) -> None:
        lines = list(lines)
        if not lines:
            return
        # Sorted and de-duplicated, so a rerun writes the same bytes (like the pipeline's own objects).
        merged = sorted(set(self._lines(name)) | set(lines))
        self.bucket.blob(name).upload_from_string("\n".join(merged) + "\n", content_type="application/x-ndjson")

    def _delete_if_unchanged(self, blob: Any, generation: int | None) -> None:
        from google.api_core import exceptions

        try:
            blob.delete(if_generation_match=generation)
        except exceptions.PreconditionFailed:
            # The pipeline rewrote the object meanwhile: the next run handles it, skipping replayed records.
            log.info("object %s changed while being replayed; left for the next run", blob.name)
        except exceptions.NotFound:
            pass


def _record_id(line: str) -> str | None:
    import json

    try:
        return json.loads(line).get("record_id")
    except (ValueError, AttributeError):
        return None


def _with_reason(line: str, reason: str) -> str:
    """The record line with `quarantine_reason` added (names and error codes only, never data)."""
    import json

    data = json.loads(line)
    data["quarantine_reason"] = reason
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _error_name(exc: Exception) -> str:
    """confluent_kafka's KafkaException carries a KafkaError whose name() says why; else the type."""
    first = exc.args[0] if exc.args else None
    name = getattr(first, "name", None)
    return str(name()) if callable(name) else type(exc).__name__
