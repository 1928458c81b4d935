"""One batch bundle, sent until each of its entries has an outcome: resent within the retry policy (the
whole bundle, or only the entries a batch-response failed transiently), and split in halves when the
server rejects it whole for what may be one bad entry or its size. A split half starts its own retry budget:
the rejection was the bad entry's, not a transient fault of the good ones.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

import httpx

from beam_pipeline.fhir_store import bundles, errors, healthcare_api
from beam_pipeline.fhir_store.bundles import PreparedEntry, WriteItem, WriteOutcome
from beam_pipeline.fhir_store.config import FhirStoreConfig
from beam_pipeline.fhir_store.errors import json_or_none
from beam_pipeline.fhir_store.exchange import Pacing, StoreHttp
from beam_pipeline.fhir_store.guard import lost_race
from beam_pipeline.fhir_store.retry import is_retryable_status
from beam_pipeline.fhir_store.stats import ClientStats

log = logging.getLogger(__name__)

# Whole-bundle rejections that may come from a single bad entry (a server validating the Bundle as one
# resource) or from sheer size: halving the bundle isolates the cause.
SPLIT_STATUSES = frozenset({400, 413, 422})
# HAPI's header naming the meta elements a write states in full (tags are otherwise carried forward).
META_SNAPSHOT_HEADER = "X-Meta-Snapshot-Mode"


class BundleWriter:
    """Sends batch bundles for one client; `on_bundle_sent` is told the size of every bundle sent."""

    def __init__(
        self,
        config: FhirStoreConfig,
        http: StoreHttp,
        stats: ClientStats,
        pacing: Pacing,
        on_bundle_sent: Callable[[int], None] | None = None,
        slots: threading.Semaphore | None = None,
    ) -> None:
        self._config = config
        self._http = http
        self._stats = stats
        self._pacing = pacing
        self._on_bundle_sent = on_bundle_sent
        # Bundles in flight at once, shared with other clients when given (FhirStoreClient's `slots`).
        self._slots = slots or contextlib.nullcontext()
        self._endpoint = f"POST {errors.redact_url(config.write_base)}"

    def write(
        self,
        items: Sequence[WriteItem],
        entries: list[PreparedEntry],
        attempts: dict[int, int],
        results: dict[int, WriteOutcome],
    ) -> None:
        """Send `entries` as one bundle until each has a final outcome in `results`."""
        self._write(items, entries, attempts, self._pacing.monotonic(), results)

    def _write(
        self,
        items: Sequence[WriteItem],
        entries: list[PreparedEntry],
        attempts: dict[int, int],
        started: float,
        results: dict[int, WriteOutcome],
    ) -> None:
        # The retry budget (tries and time) is this call's: the halves of a split bundle start their own.
        policy = self._config.retry
        pending = entries
        tries = 0
        while pending:
            tries += 1
            for e in pending:
                attempts[e.position] += 1
            failure: errors.FhirStoreError | None = None  # the whole request failed
            entry_failures: dict[int, errors.FhirStoreError] = {}  # single entries failed, retryably
            try:
                response = self._post(pending)
            except errors.FhirStoreError as exc:
                failure = exc
            else:
                if response.is_success:
                    try:
                        answers = bundles.read_batch_response(json_or_none(response), len(pending))
                    except ValueError as exc:
                        # The server may have applied the entries; resending is safe for conditional writes.
                        failure = errors.FhirStoreError(
                            code=errors.INVALID_RESPONSE,
                            retryable=True,
                            detail=f"unusable batch-response: {exc}",
                            http_status=response.status_code,
                            endpoint=self._endpoint,
                        )
                    else:
                        for entry, answer in zip(pending, answers, strict=True):
                            self._settle_entry(items, entry, answer, attempts, results, entry_failures)
                        pending = [e for e in pending if e.position in entry_failures]
                        if not pending:
                            return
                elif (
                    response.status_code in SPLIT_STATUSES and len(pending) > 1 and self._config.split_rejected_bundles
                ):
                    self._stats.add("splits")
                    middle = len(pending) // 2
                    self._write(items, pending[:middle], attempts, self._pacing.monotonic(), results)
                    self._write(items, pending[middle:], attempts, self._pacing.monotonic(), results)
                    return
                else:
                    failure = self._http.response_error(response, f"batch bundle of {len(pending)} entries")

            if failure is not None and not failure.transient:
                for e in pending:
                    results[e.position] = bundles.error_outcome(items[e.position], failure, attempts[e.position])
                return
            elapsed = self._pacing.monotonic() - started
            retry_after = failure.retry_after if failure is not None else None
            delay = policy.next_delay(tries, elapsed, retry_after, self._pacing.rng)
            if delay is None:
                # Budget spent: each entry keeps its last (retryable) error, for the dead letters and replay.
                for e in pending:
                    last = failure or entry_failures[e.position]
                    results[e.position] = bundles.error_outcome(items[e.position], last, attempts[e.position])
                return
            reason = str(failure.with_attempts(tries)) if failure is not None else "entries failed transiently"
            log.warning("FHIR store: retrying %d entries in %.2fs: %s", len(pending), delay, reason)
            self._stats.add("retries")
            self._pacing.sleep(delay)

    def _settle_entry(
        self,
        items: Sequence[WriteItem],
        entry: PreparedEntry,
        answer: bundles.EntryResponse,
        attempts: dict[int, int],
        results: dict[int, WriteOutcome],
        entry_failures: dict[int, errors.FhirStoreError],
    ) -> None:
        item = items[entry.position]
        if lost_race(entry, answer):
            # The resource changed (or appeared) between our read and this write: read and decide again.
            conflict = errors.FhirStoreError(
                code=errors.CONFLICT,
                retryable=True,
                transient=False,
                detail=f"batch entry {entry.interaction}: the stored resource changed during the write "
                f"(HTTP {answer.status})",
                http_status=answer.status,
                operation_outcome=answer.outcome,
                endpoint=self._endpoint,
            )
            results[entry.position] = bundles.error_outcome(item, conflict, attempts[entry.position])
            return
        if answer.ok:
            unchanged = bundles.kept_version(entry, answer)
            if unchanged:
                self._stats.add("unchanged")
            results[entry.position] = bundles.ok_outcome(item, answer, attempts[entry.position], unchanged=unchanged)
            return
        what = f"batch entry {entry.interaction}"
        unresolved = errors.unresolved_reference(answer.status, answer.outcome, what=what, endpoint=self._endpoint)
        if unresolved is not None:
            results[entry.position] = bundles.error_outcome(item, unresolved, attempts[entry.position])
            return
        error = errors.http_error(
            answer.status,
            retryable=is_retryable_status(answer.status),
            what=what,
            outcome=answer.outcome,
            endpoint=self._endpoint,
        )
        if error.retryable:
            entry_failures[entry.position] = error
        else:
            results[entry.position] = bundles.error_outcome(item, error, attempts[entry.position])

    def _post(self, entries: Sequence[PreparedEntry]) -> httpx.Response:
        body = bundles.batch_bundle_bytes(entries)
        headers = {"Content-Type": healthcare_api.FHIR_JSON}
        if self._config.prefer_minimal:
            headers["Prefer"] = "return=minimal"
        if any(e.source_time_ms is not None for e in entries):
            # HAPI carries a resource's earlier tags into each new version unless told that the tags sent are
            # the whole set; without this, every update would add one more source-time tag. Other servers
            # ignore the header (and stored_source_time reads the newest tag either way).
            headers[META_SNAPSHOT_HEADER] = "TAG"
        self._stats.add("bundles")
        if self._on_bundle_sent is not None:
            self._on_bundle_sent(len(entries))
        with self._slots:
            return self._http.send(
                "POST",
                self._config.write_base,
                what=f"batch bundle of {len(entries)} entries",
                content=body,
                headers=headers,
            )
