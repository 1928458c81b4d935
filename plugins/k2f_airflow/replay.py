"""Error replay: retryable error records go back to Kafka, the others to quarantine.

Every object under errors/ in the error bucket holds records no replay has handled yet (a handled object
leaves errors/), so "written since the last successful replay" needs no bookmark. Per object, in order:
1. parse its records (beam_pipeline.error_record, the one contract); skip those whose record_id is
   already in the object's replayed/ twin (handled by an earlier run that did not finish the move);
2. publish the retryable ones below the attempt cap to their topic (or the retry topic) with headers
   carrying the next attempt number and the original coordinates, then flush and check every delivery;
3. write the replayed/ and quarantine/ twins (same relative name, merged with what is there);
4. delete the source only if it is still the generation that was read.
A crash before 4 repeats at most the records of the object in flight, and the pipeline's idempotent
write absorbs that repeat; a crash after 3 repeats nothing, since step 1 then skips them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from beam_pipeline.error_record import replay_headers

log = logging.getLogger(__name__)

REPLAYED_PREFIX = "replayed"
QUARANTINE_PREFIX = "quarantine"


class ReplayError(Exception):
    """Publishing did not complete; the object stays under errors/ for the next run."""


@dataclass
class ReplayCounts:
    objects: int = 0
    replayed: int = 0
    quarantined: int = 0
    capped: int = 0
    already_replayed: int = 0
    unreadable: int = 0
    objects_left: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        topics = ", ".join(f"{t}: {n}" for t, n in sorted(self.by_topic.items())) or "none"
        return (
            f"{self.objects} error object(s): {self.replayed} record(s) replayed ({topics}), "
            f"{self.quarantined} quarantined ({self.capped} at the attempt cap, {self.unreadable} unreadable), "
            f"{self.already_replayed} already replayed earlier; {self.objects_left} object(s) left for the next run"
        )


def errors_prefix() -> str:
    """Where the pipeline's DeadLetter writes (its one definition), imported only when a task runs."""
    from beam_pipeline.transforms.dead_letter import ERRORS_PREFIX

    return ERRORS_PREFIX


def twin_name(name: str, prefix: str, source_prefix: str = "errors") -> str:
    """errors/stage=S/... -> <prefix>/stage=S/...: the same relative name under another prefix."""
    head, sep, rest = name.partition("/")
    if not sep or head != source_prefix:
        raise ValueError(f"{name} is not under {source_prefix}/")
    return f"{prefix}/{rest}"


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
        self.source_prefix = errors_prefix()

    def run(self, prefix: str | None = None, max_objects: int = 200) -> ReplayCounts:
        """Replay the objects under `prefix` (default: all of errors/), at most `max_objects` of them."""
        counts = ReplayCounts()
        listed = self.bucket.list_blobs(prefix=prefix or f"{self.source_prefix}/")
        blobs = sorted(listed, key=lambda b: b.name)
        counts.objects_left = max(0, len(blobs) - max_objects)
        for blob in blobs[:max_objects]:
            self.replay_object(blob, counts)
            counts.objects += 1
        return counts

    def replay_object(self, blob: Any, counts: ReplayCounts) -> None:
        from beam_pipeline.error_record import from_json

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
                quarantine_lines.append(line)
                continue
            replayed_lines.append(line)
            if record.record_id in done_before:
                counts.already_replayed += 1
            else:
                to_publish.append(record)
        self._publish(to_publish, counts)
        self._merge(replayed_name, replayed_lines)
        self._merge(twin_name(blob.name, QUARANTINE_PREFIX, self.source_prefix), quarantine_lines)
        counts.quarantined += len(quarantine_lines)
        self._delete_if_unchanged(blob, generation)

    def _publish(self, records: list[Any], counts: ReplayCounts) -> None:
        if not records:
            return
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err.name() if hasattr(err, "name") else err))

        for record in records:
            topic = self.retry_topic or record.source.topic
            key = record.source.key.encode() if record.source.key is not None else None
            self.producer.produce(
                topic, value=record.raw_payload(), key=key, headers=replay_headers(record), on_delivery=on_delivery
            )
            self.producer.poll(0)
        remaining = self.producer.flush(self.flush_timeout)
        if remaining or failures:
            # Kafka error names only (e.g. _MSG_TIMED_OUT): never the payload.
            raise ReplayError(
                f"{remaining} message(s) undelivered, {len(failures)} failed ({', '.join(sorted(set(failures)))})"
            )
        counts.replayed += len(records)
        for record in records:
            topic = self.retry_topic or record.source.topic
            counts.by_topic[topic] = counts.by_topic.get(topic, 0) + 1

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
