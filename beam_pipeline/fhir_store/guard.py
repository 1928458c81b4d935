"""Guarded writes: "older never overwrites newer". Upsert items with a source time are decided from what
the write store holds for their identifiers (one POST _search per resource type, the identifiers in the
body): created if absent, updated at exactly the version read if older, or settled as superseded if the
store holds newer data. A guarded write that loses a race (the resource changed between the read and the
write) is read and decided again by the client's write loop.

Nothing can be newer than a resource that does not exist, so a stream of new records needs no read: when
the last read for a resource type found none of its bundle's identifiers, the next bundle's entries of that
type go out at once as guarded creates (If-None-Exist). One whose resource exists after all is answered
200 and nothing is written: a lost race, read and decided like any other, and that type is read first
again. New records then cost the store one request a bundle instead of two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from beam_pipeline.fhir_store import bundles, errors
from beam_pipeline.fhir_store.bundles import PreparedEntry, WriteItem, WriteOutcome
from beam_pipeline.fhir_store.exchange import StoreHttp
from beam_pipeline.fhir_store.search import link, matches, same_origin
from beam_pipeline.fhir_store.stats import ClientStats

# Pages of search results followed when reading the store's state for guarded writes.
MAX_LOOKUP_PAGES = 50


class Guard:
    """Decides the guarded entries of a bundle from the write store's state."""

    def __init__(self, http: StoreHttp, stats: ClientStats, write_base: str, write_mode: str) -> None:
        self._http = http
        self._stats = stats
        self._write_base = write_base
        self._mode = write_mode
        # Per resource type: did the last read find none of its bundle's identifiers? (Shared by the client's
        # threads; a stale answer costs a request, never a wrong write.)
        self._all_new: dict[str, bool] = {}

    def decide(
        self,
        items: Sequence[WriteItem],
        entries: list[PreparedEntry],
        attempts: dict[int, int],
        results: dict[int, WriteOutcome],
    ) -> list[PreparedEntry]:
        """The entries to send: the unguarded ones as they are, then the guarded ones as decided after
        reading the store. Superseded ones, and all guarded ones when the read failed, get their outcome."""
        guarded = [e for e in entries if bundles.is_guarded(e, self._mode)]
        send = [e for e in entries if not bundles.is_guarded(e, self._mode)]
        # Only on an entry's first round: one that lost a race is always read before it is decided again.
        # Each entry is asked once: another thread may change _all_new meanwhile, and an entry counted on both
        # sides would be sent twice, on neither not at all.
        unread: list[PreparedEntry] = []
        to_read: list[PreparedEntry] = []
        for e in guarded:
            first_of_new = not attempts[e.position] and self._all_new.get(e.resource_type, False)
            (unread if first_of_new else to_read).append(e)
        if unread:
            self._stats.add("unread_creates", len(unread))
            send.extend(bundles.guarded_create(e, unread=True) for e in unread)
        guarded = to_read
        if not guarded:
            return send
        try:
            found = self._lookup(guarded)
        except errors.FhirStoreError as exc:
            for e in guarded:
                results[e.position] = bundles.error_outcome(items[e.position], exc, attempts[e.position])
            return send
        read_types = {e.resource_type for e in guarded}
        for rtype in read_types:
            self._all_new[rtype] = not any(found[e.position] for e in guarded if e.resource_type == rtype)
        for e in guarded:
            decision = bundles.guarded_entry(e, found[e.position])
            if isinstance(decision, PreparedEntry):
                send.append(decision)
            else:
                self._stats.add("superseded")
                results[e.position] = bundles.superseded_outcome(items[e.position], decision, attempts[e.position])
        return send

    def lost_races(self, entries: list[PreparedEntry], results: Mapping[int, WriteOutcome]) -> list[PreparedEntry]:
        """The guarded entries among `entries` whose write lost a race: to be read and decided again (and
        their types read before they are written from now on)."""
        lost = [e for e in entries if bundles.is_guarded(e, self._mode) and is_conflict(results.get(e.position))]
        for e in lost:
            self._all_new[e.resource_type] = False
        return lost

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
            self._stats.add("lookups")
            tokens = ",".join(bundles.token_search_value(i[2], i[3]) for i in identities)
            data = {"identifier": tokens, "_count": str(min(1000, 2 * len(identities) + 10))}
            url = f"{self._write_base}/{rtype}/_search"
            page = self._http.read_json("POST", url, f"search {rtype} by identifier", data=data)
            seen: set[tuple[int, str]] = set()
            for _ in range(MAX_LOOKUP_PAGES):
                for resource in matches(page, rtype):
                    for ident in resource.get("identifier") or []:
                        if not isinstance(ident, Mapping):
                            continue
                        identity = ("identifier", rtype, ident.get("system"), ident.get("value"))
                        for position in wanted.get(identity, ()):  # type: ignore[arg-type]
                            if (position, str(resource.get("id"))) not in seen:
                                seen.add((position, str(resource.get("id"))))
                                found[position].append(resource)
                next_url = link(page, "next")
                if not next_url or not same_origin(next_url, self._write_base):
                    break
                page = self._http.read_json("GET", next_url, f"search {rtype} by identifier (next page)")
        return found


def lost_race(entry: PreparedEntry, answer: bundles.EntryResponse) -> bool:
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


def is_conflict(outcome: WriteOutcome | None) -> bool:
    return outcome is not None and outcome.error is not None and outcome.error.code == errors.CONFLICT
