"""The FHIR store client: one object per worker thread, built from a FhirStoreConfig in a DoFn's setup()
and closed in teardown().

It owns one httpx.Client (keep-alive pool sized to the bundles in flight, explicit timeouts, auth with a
cached token) and one small thread pool that bounds how many bundles are in flight. `write()` is
synchronous: it returns when every item has an outcome, in input order.

Retries happen here and only here, bounded by the RetryPolicy: 408/409/429/5xx, timeouts and connection
errors, whether they hit the whole bundle or single entries of a batch-response (only the failed entries
are sent again). After the budget an item's outcome is an error with retryable=True, for the dead-letter
bucket and a later replay. A whole bundle refused with 401/403/404, or a token that cannot be had, is not
resent but stays retryable (an operator fixes it, then replays). Everything else is permanent on the first
answer. A bundle split to isolate a rejected entry gives each half a fresh budget: the rejection was the
bad entry's, not a transient fault of the good ones.

Upsert items with a source time are guarded (bundles.py): a search on the write store reads what it holds
for their identifiers, then each is created if absent, updated at exactly the version read if older, or
skipped as superseded if the store holds newer data. A guarded write that loses a race (the resource
changed between the read and the write) is read and decided again.
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from beam_pipeline.fhir_store import bundles, errors, healthcare_api
from beam_pipeline.fhir_store.auth import build_auth
from beam_pipeline.fhir_store.bundles import PreparedEntry, WriteItem, WriteOutcome
from beam_pipeline.fhir_store.config import FhirStoreConfig
from beam_pipeline.fhir_store.errors import json_or_none as _json
from beam_pipeline.fhir_store.retry import (
    RetryPolicy,
    is_retryable_status,
    parse_retry_after,
    request_failure_class,
)

log = logging.getLogger(__name__)

# Whole-bundle rejections that may come from a single bad entry (a server validating the Bundle as one
# resource) or from sheer size: halving the bundle isolates the cause.
_SPLIT_STATUSES = frozenset({400, 413, 422})
# HAPI's header naming the meta elements a write states in full (tags are otherwise carried forward).
_META_SNAPSHOT_HEADER = "X-Meta-Snapshot-Mode"
# Pages of search results followed when reading the store's state for guarded writes.
_MAX_LOOKUP_PAGES = 50


@dataclass(frozen=True)
class CapabilityReport:
    """The answer of `check()`: is the store reachable, is it FHIR R4, and what else is wrong."""

    reachable: bool
    fhir_version: str | None = None
    software: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems


class ClientStats:
    """Counters of what the client did, shared by its threads (for logs, metrics and the benchmark)."""

    _FIELDS = (
        "requests",
        "bundles",
        "retries",
        "splits",
        "entries_ok",
        "entries_failed",
        "lookups",
        "superseded",
        "conflicts",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self._FIELDS, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class FhirStoreClient:
    """Writes batch bundles to, and searches, one FHIR store (Healthcare API or any R4 server).

    The keyword arguments after `config` exist for tests and special deployments: an httpx transport (e.g.
    httpx.MockTransport), google-auth credentials instead of ADC, the google.auth transport request factory
    used to refresh them, the clock, sleep and RNG the retry loop uses, and a callback told the size of
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
    ) -> None:
        self.config = config
        self.stats = ClientStats()
        # Told the number of entries of every batch bundle sent (retries and split halves included).
        self._on_bundle_sent = on_bundle_sent
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311  (jitter)
        timeout = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.write_timeout,
            pool=config.pool_timeout,
        )
        # Room for every bundle in flight plus a search or check running beside them.
        connections = config.max_bundles_in_flight + 2
        limits = httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=config.keepalive_expiry,
        )
        self._token_http: httpx.Client | None = None
        if config.auth_kind == "oauth2":
            # Its own client: token requests must not go through the FHIR client's Auth (or its pool).
            self._token_http = httpx.Client(
                timeout=timeout, transport=transport, headers={"User-Agent": config.user_agent}
            )
        if transport is None:
            # retries=0: httpx's own connect retries would hide attempts from our budget and counters.
            transport = httpx.HTTPTransport(limits=limits, retries=0)
        self._auth = build_auth(
            config,
            token_http=self._token_http,
            google_credentials=google_credentials,
            google_request_factory=google_request_factory,
            clock=clock,
        )
        headers = {"Accept": "application/fhir+json", "User-Agent": config.user_agent}
        headers.update(dict(config.extra_headers))
        self._http = httpx.Client(
            auth=self._auth,
            timeout=timeout,
            headers=headers,
            transport=transport,
            follow_redirects=False,  # a redirect would resend the token to wherever it points
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.max_bundles_in_flight, thread_name_prefix="fhir-store-bundle"
        )
        self._write_endpoint = f"POST {errors.redact_url(config.write_base)}"

    # -- lifecycle ------------------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()
        if self._token_http is not None:
            self._token_http.close()

    def __enter__(self) -> FhirStoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------------------

    def write(self, items: Sequence[WriteItem]) -> list[WriteOutcome]:
        """Write `items` in batch bundles; one outcome per item, in input order. Never raises for a failed
        item: its outcome carries the error."""
        cfg = self.config
        outcomes: list[WriteOutcome | None] = [None] * len(items)
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

        for round_entries in bundles.plan_rounds(prepared):
            groups = bundles.chunked(round_entries, cfg.bundle_size)
            if len(groups) == 1:
                # One bundle: no thread hop needed.
                results = [self._write_bundle(items, groups[0])]
            else:
                futures = [self._pool.submit(self._write_bundle, items, group) for group in groups]
                # Let every bundle of the round finish before the next round (same identities) starts, and
                # before an unexpected exception leaves this call.
                concurrent.futures.wait(futures)
                results = [f.result() for f in futures]
            for result in results:
                for position, outcome in result.items():
                    outcomes[position] = outcome
        final: list[WriteOutcome] = []
        for position, outcome in enumerate(outcomes):
            if outcome is None:  # a bug, not a server answer: the item stays retryable rather than lost
                log.error("FHIR store: an item got no outcome; reported as a retryable internal error")
                outcome = bundles.error_outcome(items[position], errors.internal_error("an item got no outcome"), 0)
            final.append(outcome)
        return final

    def _write_bundle(self, items: Sequence[WriteItem], entries: list[PreparedEntry]) -> dict[int, WriteOutcome]:
        results: dict[int, WriteOutcome] = {}
        attempts = {e.position: 0 for e in entries}
        try:
            self._write_guarded(items, entries, attempts, results)
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

    def _write_guarded(
        self,
        items: Sequence[WriteItem],
        entries: list[PreparedEntry],
        attempts: dict[int, int],
        results: dict[int, WriteOutcome],
    ) -> None:
        """Write `entries`; guarded ones are decided from the store's state first, and decided again when
        they lose a race, at most `max_attempts` times."""
        mode = self.config.write_mode
        todo = entries
        for _ in range(self.config.retry.max_attempts):
            guarded = [e for e in todo if bundles.is_guarded(e, mode)]
            send = [e for e in todo if not bundles.is_guarded(e, mode)]
            if guarded:
                send.extend(self._decide(items, guarded, attempts, results))
            self._write_entries(items, send, attempts, self._monotonic(), results)
            todo = [e for e in guarded if _is_conflict(results.get(e.position))]
            if not todo:
                return
            self.stats.add("conflicts", len(todo))

    def _decide(
        self,
        items: Sequence[WriteItem],
        guarded: list[PreparedEntry],
        attempts: dict[int, int],
        results: dict[int, WriteOutcome],
    ) -> list[PreparedEntry]:
        """The entries to send for `guarded` after reading the store; superseded ones get their outcome."""
        try:
            found = self._lookup(guarded)
        except errors.FhirStoreError as exc:
            for e in guarded:
                results[e.position] = bundles.error_outcome(items[e.position], exc, attempts[e.position])
            return []
        send = []
        for e in guarded:
            decision = bundles.guarded_entry(e, found[e.position])
            if isinstance(decision, PreparedEntry):
                send.append(decision)
            else:
                self.stats.add("superseded")
                results[e.position] = bundles.superseded_outcome(items[e.position], decision, attempts[e.position])
        return send

    def _lookup(self, entries: list[PreparedEntry]) -> dict[int, list[dict[str, Any]]]:
        """The stored resources matching each entry's identifier, by entry position: one search per resource
        type, POSTed to the write store (the identifiers go in the body, not in a URL)."""
        found: dict[int, list[dict[str, Any]]] = {e.position: [] for e in entries}
        wanted: dict[tuple[str, ...], list[int]] = {}
        for e in entries:
            wanted.setdefault(e.identity or (), []).append(e.position)
        by_type: dict[str, list[tuple[str, ...]]] = {}
        for identity in wanted:
            by_type.setdefault(identity[1], []).append(identity)
        for rtype, identities in by_type.items():
            self.stats.add("lookups")
            tokens = ",".join(bundles.token_search_value(i[2], i[3]) for i in identities)
            data = {"identifier": tokens, "_count": str(min(1000, 2 * len(identities) + 10))}
            url = f"{self.config.write_base}/{rtype}/_search"
            page = self._read_json("POST", url, f"search {rtype} by identifier", data=data)
            seen: set[tuple[int, str]] = set()
            for _ in range(_MAX_LOOKUP_PAGES):
                for resource in _matches(page, rtype):
                    for ident in resource.get("identifier") or []:
                        if not isinstance(ident, Mapping):
                            continue
                        identity = ("identifier", rtype, ident.get("system"), ident.get("value"))
                        for position in wanted.get(identity, ()):  # type: ignore[arg-type]
                            if (position, str(resource.get("id"))) not in seen:
                                seen.add((position, str(resource.get("id"))))
                                found[position].append(resource)
                next_url = _link(page, "next")
                if not next_url or not _same_origin(next_url, self.config.write_base):
                    break
                page = self._read_json("GET", next_url, f"search {rtype} by identifier (next page)")
        return found

    def _write_entries(
        self,
        items: Sequence[WriteItem],
        entries: list[PreparedEntry],
        attempts: dict[int, int],
        started: float,
        results: dict[int, WriteOutcome],
    ) -> None:
        """Send `entries` as one bundle until each has a final outcome in `results`. The retry budget (tries
        and time) is this call's: the halves of a split bundle start their own."""
        policy = self.config.retry
        pending = entries
        tries = 0
        while pending:
            tries += 1
            for e in pending:
                attempts[e.position] += 1
            failure: errors.FhirStoreError | None = None  # the whole request failed
            entry_failures: dict[int, errors.FhirStoreError] = {}  # single entries failed, retryably
            try:
                response = self._post_bundle(pending)
            except errors.FhirStoreError as exc:
                failure = exc
            else:
                if response.is_success:
                    try:
                        answers = bundles.read_batch_response(_json(response), len(pending))
                    except ValueError as exc:
                        # The server may have applied the entries; resending is safe for conditional writes.
                        failure = errors.FhirStoreError(
                            code=errors.INVALID_RESPONSE,
                            retryable=True,
                            detail=f"unusable batch-response: {exc}",
                            http_status=response.status_code,
                            endpoint=self._write_endpoint,
                        )
                    else:
                        for entry, answer in zip(pending, answers, strict=True):
                            self._settle_entry(items, entry, answer, attempts, results, entry_failures)
                        pending = [e for e in pending if e.position in entry_failures]
                        if not pending:
                            return
                elif (
                    response.status_code in _SPLIT_STATUSES and len(pending) > 1 and self.config.split_rejected_bundles
                ):
                    self.stats.add("splits")
                    middle = len(pending) // 2
                    self._write_entries(items, pending[:middle], attempts, self._monotonic(), results)
                    self._write_entries(items, pending[middle:], attempts, self._monotonic(), results)
                    return
                else:
                    failure = self._response_error(response, f"batch bundle of {len(pending)} entries")

            if failure is not None and not failure.transient:
                for e in pending:
                    results[e.position] = bundles.error_outcome(items[e.position], failure, attempts[e.position])
                return
            elapsed = self._monotonic() - started
            retry_after = failure.retry_after if failure is not None else None
            delay = policy.next_delay(tries, elapsed, retry_after, self._rng)
            if delay is None:
                # Budget spent: each entry keeps its last (retryable) error, for the dead letters and replay.
                for e in pending:
                    last = failure or entry_failures[e.position]
                    results[e.position] = bundles.error_outcome(items[e.position], last, attempts[e.position])
                return
            reason = str(failure.with_attempts(tries)) if failure is not None else "entries failed transiently"
            log.warning("FHIR store: retrying %d entries in %.2fs: %s", len(pending), delay, reason)
            self.stats.add("retries")
            self._sleep(delay)

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
        if _lost_race(entry, answer):
            # The resource changed (or appeared) between our read and this write: read and decide again.
            conflict = errors.FhirStoreError(
                code=errors.CONFLICT,
                retryable=True,
                transient=False,
                detail=f"batch entry {entry.interaction}: the stored resource changed during the write "
                f"(HTTP {answer.status})",
                http_status=answer.status,
                operation_outcome=answer.outcome,
                endpoint=self._write_endpoint,
            )
            results[entry.position] = bundles.error_outcome(item, conflict, attempts[entry.position])
            return
        if answer.ok:
            results[entry.position] = bundles.ok_outcome(item, answer, attempts[entry.position])
            return
        what = f"batch entry {entry.interaction}"
        unresolved = errors.unresolved_reference(
            answer.status, answer.outcome, what=what, endpoint=self._write_endpoint
        )
        if unresolved is not None:
            results[entry.position] = bundles.error_outcome(item, unresolved, attempts[entry.position])
            return
        error = errors.http_error(
            answer.status,
            retryable=is_retryable_status(answer.status),
            what=f"batch entry {entry.interaction}",
            outcome=answer.outcome,
            endpoint=self._write_endpoint,
        )
        if error.retryable:
            entry_failures[entry.position] = error
        else:
            results[entry.position] = bundles.error_outcome(item, error, attempts[entry.position])

    def _post_bundle(self, entries: Sequence[PreparedEntry]) -> httpx.Response:
        body = bundles.batch_bundle_bytes(entries)
        headers = {"Content-Type": healthcare_api.FHIR_JSON}
        if self.config.prefer_minimal:
            headers["Prefer"] = "return=minimal"
        if any(e.source_time_ms is not None for e in entries):
            # HAPI carries a resource's earlier tags into each new version unless told that the tags sent are
            # the whole set; without this, every update would add one more source-time tag. Other servers
            # ignore the header (and stored_source_time reads the newest tag either way).
            headers[_META_SNAPSHOT_HEADER] = "TAG"
        self.stats.add("bundles")
        if self._on_bundle_sent is not None:
            self._on_bundle_sent(len(entries))
        return self._send(
            "POST",
            self.config.write_base,
            what=f"batch bundle of {len(entries)} entries",
            content=body,
            headers=headers,
        )

    # -- reads ----------------------------------------------------------------------------------------

    def search(self, resource_type: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One page of a search on the read store: the searchset Bundle."""
        _check_type(resource_type)
        url = f"{self.config.read_base}/{resource_type}"
        return self._get_json(url, params=dict(params or {}), what=f"search {resource_type}")

    def search_by_identifier(
        self, resource_type: str, system: str, value: str, *, max_pages: int = 10
    ) -> list[dict[str, Any]]:
        """Resources of `resource_type` on the read store carrying identifier system|value (matches only,
        no included resources), following `next` links on the same server up to `max_pages` pages."""
        page = self.search(resource_type, {"identifier": bundles.token_search_value(system, value)})
        found: list[dict[str, Any]] = []
        for _ in range(max_pages):
            found.extend(_matches(page, resource_type))
            next_url = _link(page, "next")
            if not next_url or not _same_origin(next_url, self.config.read_base):
                break
            page = self._get_json(next_url, params=None, what=f"search {resource_type} (next page)")
        return found

    def count(self, resource_type: str, params: Mapping[str, str] | None = None) -> int:
        """How many resources match (`_summary=count`)."""
        bundle = self.search(resource_type, {**(params or {}), "_summary": "count"})
        total = bundle.get("total")
        if not isinstance(total, int):
            raise errors.FhirStoreError(
                code=errors.INVALID_RESPONSE,
                retryable=False,
                detail="the count search returned no total",
                endpoint=f"GET {errors.redact_url(self.config.read_base)}",
            )
        return total

    def check(self, retry: RetryPolicy | None = None) -> CapabilityReport:
        """Is the store reachable and FHIR R4? Never raises for a store problem: the report lists it.

        Healthcare API: each store's configuration must exist with version R4, and the write store's FHIR
        API must answer /metadata. Any other server: /metadata of the write (and a distinct read) base must
        answer with a CapabilityStatement for FHIR 4.0.x.
        """
        retry = retry or self.config.retry
        problems: list[str] = []
        hc = self.config.healthcare_api
        if hc is not None:
            for store in dict.fromkeys((hc.write_store, hc.effective_read_store)):
                name = healthcare_api.store_name(hc.project_id, hc.location, hc.dataset, store)
                try:
                    store_config = self._get_json(hc.store_url(store), None, f"get FHIR store {store}", retry)
                except errors.FhirStoreError as exc:
                    if exc.http_status == 404:
                        problems.append(f"FHIR store {name} does not exist")
                    else:
                        problems.append(f"FHIR store {name} could not be read: {exc}")
                    continue
                problems.extend(healthcare_api.store_config_problems(name, store_config))
        bases = [self.config.write_base]
        if hc is None and self.config.read_base != self.config.write_base:
            bases.append(self.config.read_base)
        reachable = True
        version = software = None
        for i, base in enumerate(bases):
            try:
                statement = self._get_json(f"{base}/metadata", None, "capability statement", retry)
            except errors.FhirStoreError as exc:
                problems.append(f"{errors.redact_url(base)}/metadata: {exc}")
                if i == 0:
                    reachable = False  # the write store decides reachability
                continue
            base_version = statement.get("fhirVersion") if isinstance(statement, Mapping) else None
            if i == 0:
                version = base_version
                sw = statement.get("software") or {}
                software = " ".join(str(sw[k]) for k in ("name", "version") if sw.get(k)) or None
            if not (isinstance(base_version, str) and base_version.startswith("4.0")):
                problems.append(f"{errors.redact_url(base)} speaks FHIR {base_version or 'unknown'}, not R4 (4.0.x)")
        return CapabilityReport(reachable=reachable, fhir_version=version, software=software, problems=tuple(problems))

    def _get_json(
        self, url: str, params: Mapping[str, str] | None, what: str, retry: RetryPolicy | None = None
    ) -> dict[str, Any]:
        """GET with the retry policy (GETs are safe to repeat); raises FhirStoreError."""
        return self._read_json("GET", url, what, retry, params=params)

    def _read_json(
        self, method: str, url: str, what: str, retry: RetryPolicy | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """A read (GET, or a POST _search) with the retry policy; raises FhirStoreError."""
        policy = retry or self.config.retry
        started = self._monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                # no-cache: HAPI reuses identical search results for a minute by default, and a reference
                # lookup must see a resource written seconds ago.
                response = self._send(method, url, what=what, headers={"Cache-Control": "no-cache"}, **kwargs)
                if response.is_success:
                    body = _json(response)
                    if isinstance(body, dict):
                        return body
                    error = errors.FhirStoreError(
                        code=errors.INVALID_RESPONSE,
                        retryable=False,
                        detail=f"{what}: the body is not JSON",
                        http_status=response.status_code,
                        endpoint=f"{method} {errors.redact_url(url)}",
                    )
                else:
                    error = self._response_error(response, what, method=method, url=url)
            except errors.FhirStoreError as exc:
                error = exc
            delay = policy.next_delay(attempt, self._monotonic() - started, error.retry_after, self._rng)
            if not error.transient or delay is None:
                raise error.with_attempts(attempt)
            self.stats.add("retries")
            self._sleep(delay)

    # -- HTTP -----------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:  # noqa: ANN401
        """One HTTP exchange; transport failures become retryable FhirStoreErrors."""
        endpoint = f"{method} {errors.redact_url(url)}"
        self.stats.add("requests")
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise errors.FhirStoreError(
                code=errors.TIMEOUT, retryable=True, detail=f"{what}: {type(exc).__name__}", endpoint=endpoint
            ) from None
        except httpx.TransportError as exc:
            raise errors.FhirStoreError(
                code=errors.CONNECTION_ERROR,
                retryable=True,
                detail=f"{what}: {type(exc).__name__}",
                endpoint=endpoint,
            ) from None
        except errors.FhirStoreError as exc:  # from the auth layer (token endpoint, ADC refresh)
            exc.endpoint = exc.endpoint or endpoint
            raise

    def _response_error(
        self, response: httpx.Response, what: str, *, method: str = "POST", url: str | None = None
    ) -> errors.FhirStoreError:
        status = response.status_code
        retryable, transient = request_failure_class(status)
        return errors.http_error(
            status,
            retryable=retryable,
            transient=transient,
            what=what,
            outcome=errors.as_operation_outcome(_json(response)),
            endpoint=f"{method} {errors.redact_url(url or self.config.write_base)}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )


def _lost_race(entry: PreparedEntry, answer: bundles.EntryResponse) -> bool:
    """Does this answer to a guarded entry mean "the stored resource changed since we read it"?

    409 (HAPI's answer to a failed If-Match, and to two creates of one conditional URL at once); 412 on a
    versioned update, the FHIR specification's If-Match answer, unless its OperationOutcome names anything but
    a conflict (HAPI answers 412 to a resource that fails profile validation too); 200 to the guarded create
    (the resource exists after all).
    """
    if entry.guard is None:
        return False
    if answer.status == 409 or (entry.guard == "create" and answer.status == 200):
        return True
    if entry.guard == "update" and answer.status == 412:
        severe = [code.split("/", 1) for code in errors.outcome_issue_codes(answer.outcome)]
        return {code for severity, code in severe if severity in ("error", "fatal")} <= {"conflict"}
    return False


def _is_conflict(outcome: WriteOutcome | None) -> bool:
    return outcome is not None and outcome.error is not None and outcome.error.code == errors.CONFLICT


def _matches(page: Mapping[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """The resources of a searchset page that matched (not _include'd ones)."""
    out = []
    for entry in page.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        mode = (entry.get("search") or {}).get("mode", "match") if isinstance(entry, Mapping) else None
        if isinstance(resource, dict) and resource.get("resourceType") == resource_type and mode == "match":
            out.append(resource)
    return out


def _link(bundle: Mapping[str, Any], relation: str) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == relation and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _same_origin(url: str, base: str) -> bool:
    # Paging links must not lead the token to another host.
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _check_type(resource_type: str) -> None:
    if not (resource_type.isascii() and resource_type.isalpha() and resource_type[:1].isupper()):
        raise ValueError("resource_type must be a FHIR resource type name such as Patient")
