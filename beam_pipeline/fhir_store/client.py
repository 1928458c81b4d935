"""The FHIR store client: one object per worker thread, built from a FhirStoreConfig in a DoFn's setup()
and closed in teardown().

It wires the parts that each do one job: the HTTP exchange with its auth and the retried reads
(exchange.py), the batch bundle sent, resent and split until each entry has an outcome (batching.py), the
guard that decides upserts with a source time from the store's state (guard.py), the searches (search.py)
and the capability check (capability.py). `write()` is synchronous: it returns when every item has an
outcome, in input order.

Retries happen in those parts and only there, bounded by the RetryPolicy: 408/409/429/5xx, timeouts and
connection errors, whether they hit the whole bundle or single entries of a batch-response (only the failed
entries are sent again). After the budget an item's outcome is an error with retryable=True, for the
dead-letter bucket and a later replay. A whole bundle refused with 401/403/404, or a token that cannot be
had, is not resent but stays retryable (an operator fixes it, then replays). Everything else is permanent
on the first answer.
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from beam_pipeline.fhir_store import bundles, errors, search
from beam_pipeline.fhir_store.batching import BundleWriter
from beam_pipeline.fhir_store.bundles import PreparedEntry, WriteItem, WriteOutcome
from beam_pipeline.fhir_store.capability import CapabilityReport, check_store
from beam_pipeline.fhir_store.config import FhirStoreConfig
from beam_pipeline.fhir_store.exchange import Pacing, StoreHttp
from beam_pipeline.fhir_store.guard import Guard
from beam_pipeline.fhir_store.retry import RetryPolicy
from beam_pipeline.fhir_store.stats import ClientStats

__all__ = ["CapabilityReport", "ClientStats", "FhirStoreClient"]

log = logging.getLogger(__name__)


class FhirStoreClient:
    """Writes batch bundles to, and searches, one FHIR store (Healthcare API or any R4 server).

    The keyword arguments after `config` exist for tests and special deployments: an httpx transport (e.g.
    httpx.MockTransport), google-auth credentials instead of ADC, the google.auth transport request factory
    used to refresh them, the clock, sleep and RNG the retry loops use, and a callback told the size of
    every batch bundle sent (the write step's metric).
    """

    def __init__(
        self,
        config: FhirStoreConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        google_credentials: Any = None,  # noqa: ANN401  (google.auth.credentials.Credentials)
        google_request_factory: Callable[[], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_bundle_sent: Callable[[int], None] | None = None,
        slots: threading.Semaphore | None = None,
    ) -> None:
        """`slots`: a semaphore bounding the bundles in flight across every client that shares it (the
        write step's clients of one worker process share one per store); each client's own bound is
        `max_bundles_in_flight` either way."""
        self.config = config
        self.stats = ClientStats()
        pacing = Pacing(sleep=sleep, monotonic=monotonic, rng=rng or random.Random())  # noqa: S311  (jitter)
        self._http = StoreHttp(
            config,
            self.stats,
            pacing,
            transport=transport,
            google_credentials=google_credentials,
            google_request_factory=google_request_factory,
            clock=clock,
        )
        self._guard = Guard(self._http, self.stats, config.write_base, config.write_mode)
        # Told the number of entries of every batch bundle sent (retries and split halves included).
        self._bundles = BundleWriter(config, self._http, self.stats, pacing, on_bundle_sent, slots)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.max_bundles_in_flight, thread_name_prefix="fhir-store-bundle"
        )

    # -- lifecycle ------------------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()

    def __enter__(self) -> FhirStoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------------------

    def write(self, items: Sequence[WriteItem]) -> list[WriteOutcome]:
        """Write `items` in batch bundles; one outcome per item, in input order. Never raises for a failed
        item: its outcome carries the error."""
        outcomes: dict[int, WriteOutcome] = {}
        prepared = self._prepare(items, outcomes)
        # Rounds never hold two entries of one identity; a round's bundles are in flight together, and each
        # finishes before the next round starts (or an unexpected exception leaves this call).
        for round_entries in bundles.plan_rounds(prepared):
            groups = bundles.chunked(round_entries, self.config.bundle_size)
            if len(groups) == 1:
                results = [self._write_bundle(items, groups[0])]  # one bundle: no thread hop needed
            else:
                futures = [self._pool.submit(self._write_bundle, items, group) for group in groups]
                concurrent.futures.wait(futures)
                results = [f.result() for f in futures]
            for result in results:
                outcomes.update(result)
        return [self._outcome_of(items, position, outcomes.get(position)) for position in range(len(items))]

    def _prepare(self, items: Sequence[WriteItem], outcomes: dict[int, WriteOutcome]) -> list[PreparedEntry]:
        """Each item as a batch entry; an item that cannot be one gets its outcome now."""
        cfg = self.config
        prepared: list[PreparedEntry] = []
        for position, item in enumerate(items):
            try:
                entry = bundles.prepare_entry(item, position, cfg.write_mode, require_identifier=cfg.require_identifier)
            except Exception as exc:  # noqa: BLE001  (one item's defect must not fail the others)
                entry = errors.FhirStoreError(
                    code=errors.INVALID_ITEM,
                    retryable=False,
                    detail=f"the item could not be prepared ({type(exc).__name__})",
                    attempts=0,
                )
            if isinstance(entry, errors.FhirStoreError):
                outcomes[position] = bundles.error_outcome(item, entry, 0)
                self.stats.add("entries_failed")
            else:
                prepared.append(entry)
        return prepared

    @staticmethod
    def _outcome_of(items: Sequence[WriteItem], position: int, outcome: WriteOutcome | None) -> WriteOutcome:
        if outcome is None:  # a bug, not a server answer: the item stays retryable rather than lost
            log.error("FHIR store: an item got no outcome; reported as a retryable internal error")
            return bundles.error_outcome(items[position], errors.internal_error("an item got no outcome"), 0)
        return outcome

    def _write_bundle(self, items: Sequence[WriteItem], entries: list[PreparedEntry]) -> dict[int, WriteOutcome]:
        """One bundle's entries to their outcomes: guarded ones decided from the store's state, everything
        sent, and the guarded writes that lost a race decided again, at most `max_attempts` times."""
        results: dict[int, WriteOutcome] = {}
        attempts = {e.position: 0 for e in entries}
        try:
            todo = entries
            rounds = self.config.retry.max_attempts
            while todo and rounds > 0:
                send = self._guard.decide(items, todo, attempts, results)
                unread = {e.position for e in send if e.unread}
                self._bundles.write(items, send, attempts, results)
                todo = self._guard.lost_races(todo, results)
                found = sum(1 for e in todo if e.position in unread)
                self.stats.add("unread_creates_found", found)
                self.stats.add("conflicts", len(todo) - found)
                # Creates sent without a read cost no try: those whose resource exists are read now.
                rounds -= 0 if unread else 1
        except Exception as exc:  # noqa: BLE001  (a defect here must cost this bundle a retry, not its messages)
            # The type only: an exception's message may quote data.
            log.error("FHIR store: unexpected %s writing a bundle; its entries stay retryable", type(exc).__name__)
            error = errors.internal_error(f"unexpected {type(exc).__name__} while writing a batch bundle")
            for e in entries:
                if e.position not in results:
                    results[e.position] = bundles.error_outcome(items[e.position], error, attempts[e.position])
        ok = sum(1 for o in results.values() if o.ok)
        self.stats.add("entries_ok", ok)
        self.stats.add("entries_failed", len(results) - ok)
        return results

    # -- reads ----------------------------------------------------------------------------------------

    def search(self, resource_type: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One page of a search on the read store: the searchset Bundle."""
        return search.search(self._http, self.config.read_base, resource_type, params)

    def search_by_identifier(
        self, resource_type: str, system: str, value: str, *, max_pages: int = 10
    ) -> list[dict[str, Any]]:
        """Resources of `resource_type` on the read store carrying identifier system|value (matches only,
        no included resources), following `next` links on the same server up to `max_pages` pages."""
        return search.search_by_identifier(
            self._http, self.config.read_base, resource_type, system, value, max_pages=max_pages
        )

    def count(self, resource_type: str, params: Mapping[str, str] | None = None) -> int:
        """How many resources match (`_summary=count`)."""
        return search.count(self._http, self.config.read_base, resource_type, params)

    def check(self, retry: RetryPolicy | None = None) -> CapabilityReport:
        """Is the store reachable and FHIR R4? Never raises for a store problem: the report lists it
        (capability.check_store)."""
        return check_store(self._http, self.config, retry or self.config.retry)
