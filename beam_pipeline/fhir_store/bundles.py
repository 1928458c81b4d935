"""Batch bundles as pure functions: items to entries, entries to bundles, batch-responses to outcomes.

Nothing here does I/O, so every rule (write modes, identity per bundle, response mapping) is testable with
plain dicts.

Write modes, per item with a business identifier (system, value):
- upsert: `PUT Type?identifier=system|value` (conditional update): no match creates, one match updates,
  so a redelivered or replayed message lands on the same resource.
- conditional_create: `POST Type` with `ifNoneExist: identifier=system|value`: never overwrites.
- create: `POST Type`: a new resource every time (the original sample's behaviour).
An item without an identifier is a plain create, or `PUT Type/id` in upsert mode when the resource has an
id (unless the config requires identifiers).

FHIR's batch rules let a server process entries in any order, and two entries conditional on the same
identifier would race to create it. So a resource identity appears at most once per bundle and per
"round" of bundles in flight: the n-th occurrence of an identity in one `write()` goes to round n, and
round n+1 starts only when round n is done, which also keeps each patient's updates in message order.

Older never overwrites newer. An item may carry its message's source time (epoch milliseconds). It
travels in the resource as a `meta.tag` of system SOURCE_TIME_SYSTEM, and in upsert mode the client
first reads what the store holds for the identifier (`guarded_entry` decides from that): nothing, a
create that fails if someone else created it meanwhile (`ifNoneExist`); an older or equal source time,
an update of exactly the version read (`ifMatch`); a newer one, no write at all (superseded). A guarded
update answered with the very version it named made no new version: the store already held that content
(HAPI answers a no-op update so), and its outcome is `unchanged`.

Each entry is encoded to JSON bytes once, when it is prepared, so a resource that cannot be encoded (a
lone surrogate, NaN, a value JSON has no form for) fails alone instead of taking its bundle with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from beam_pipeline.fhir_store import errors

_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_RESOURCE_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ETAG_VERSION = re.compile(r'^(?:W/)?"([^"]+)"$')

# The meta.tag that carries a resource's source time: the Kafka timestamp (ms) of the message it came from.
SOURCE_TIME_SYSTEM = "urn:kafka-to-fhir:source-time"
# Longest conditional URL (`Type?identifier=...`, percent-encoded) an entry may carry. HAPI keeps the
# conditional URLs of its writes in a 768-character column and answers 409 beyond it (measured on HAPI 8.4);
# general URL limits (about 2,000 characters) are higher. A longer identifier fails alone, with its own code.
MAX_CONDITIONAL_URL = 768

T = TypeVar("T")


@dataclass(frozen=True)
class WriteItem:
    """One resource to write: its business identifier (system, value), if any, and an opaque `key` the
    caller uses to find the message it came from (returned untouched in the outcome)."""

    resource: Mapping[str, Any]
    identifier: tuple[str, str] | None = None
    key: Any = None
    # When the source produced this data (epoch ms); lets the client refuse to replace newer data with it.
    source_time_ms: int | None = None


@dataclass(frozen=True)
class WriteOutcome:
    """What became of one item: `ok` with the server's status, location and version, or `error`."""

    key: Any
    ok: bool
    status: int | None = None
    location: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    version_id: str | None = None
    attempts: int = 0
    error: errors.FhirStoreError | None = None
    # Not written: the store already holds data from a newer source time for this identifier.
    superseded: bool = False
    # Written, but the store kept the version it held: the resource already had this content.
    unchanged: bool = False

    @property
    def created(self) -> bool:
        return self.ok and self.status == 201

    @property
    def retryable(self) -> bool:
        return self.error is not None and self.error.retryable


@dataclass(frozen=True)
class PreparedEntry:
    """A Bundle.entry ready to send, with the position of its item in the `write()` call."""

    position: int
    entry: dict[str, Any] = field(repr=False)
    resource_type: str
    # (kind, type, ...) naming the target resource; None when the entry always creates a new one.
    identity: tuple[str, ...] | None
    # "PUT Patient?identifier" style, without values: safe for error details.
    interaction: str
    # The entry as UTF-8 JSON, encoded once.
    body: bytes = field(default=b"", repr=False)
    source_time_ms: int | None = None
    # Set on entries built by guarded_entry: "create" (ifNoneExist) or "update" (ifMatch); a conflict
    # answer to such an entry means "read again and decide again", not a failure.
    guard: str | None = None
    # A guarded create sent without reading the store first (guard.py): its 200 is no race, but the read
    # it skipped.
    unread: bool = False


@dataclass(frozen=True)
class EntryResponse:
    """Bundle.entry.response of a batch-response entry."""

    status: int
    location: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    outcome: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def version_id(self) -> str | None:
        from_etag = parse_etag(self.etag)
        return from_etag if from_etag is not None else parse_location(self.location)[2]


def token_search_value(system: str, value: str) -> str:
    """`system|value` for a token search, with FHIR's backslash escapes for | , $ and \\ inside each part.

    `$` stays as it is in the system: it separates nothing there, and HAPI's check that a conditional
    write's resource matches its URL does not undo `\\$` in a system (measured on HAPI 8.4).
    """
    return f"{_escape_token(system, dollar=False)}|{_escape_token(value)}"


def encoded_token(system: str, value: str, *, keep: str = "") -> str:
    """The token of `system|value` as a URL carries it: FHIR's escapes, then percent-encoded except for
    `keep`. A server decodes a query once, so any `keep` of characters that separate nothing in a query
    string (a conditional reference keeps `:/|\\` readable) names the same token as the guard search."""
    return quote(token_search_value(system, value), safe=keep)


def identifier_query(system: str, value: str) -> str:
    """The query string matching one identifier: `identifier=` plus the percent-encoded token."""
    return "identifier=" + encoded_token(system, value)


def prepare_entry(
    item: WriteItem, position: int, mode: str, *, require_identifier: bool = False
) -> PreparedEntry | errors.FhirStoreError:
    """The bundle entry for `item`, or an error (nothing will be sent for it)."""
    resource = item.resource
    if not isinstance(resource, Mapping):
        return _invalid("the item's resource is not a JSON object")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not _RESOURCE_TYPE.match(rtype):
        return _invalid("the item's resource has no valid resourceType")
    identifier = item.identifier
    if identifier is not None:
        problem = _identifier_problem(identifier, resource)
        if problem:
            return _invalid(f"{rtype}: {problem}")
    if mode != "create" and identifier is None and require_identifier:
        return _invalid(f"{rtype}: no business identifier, and {mode} requires one")
    source_time = item.source_time_ms if isinstance(item.source_time_ms, int) else None
    body = with_source_time(resource, source_time) if source_time is not None else dict(resource)
    try:
        query = identifier_query(*identifier) if identifier is not None and mode != "create" else None
    except UnicodeEncodeError:
        return _invalid(f"{rtype}: the business identifier is not valid Unicode text")
    if query is not None and len(rtype) + 1 + len(query) > MAX_CONDITIONAL_URL:
        return errors.FhirStoreError(
            code=errors.IDENTIFIER_TOO_LONG,
            retryable=False,
            detail=f"{rtype}: the business identifier makes a conditional URL of {len(rtype) + 1 + len(query)} "
            f"characters, over the limit of {MAX_CONDITIONAL_URL}",
            attempts=0,
        )

    if mode == "upsert" and identifier is not None and query is not None:
        system, value = identifier
        request = {"method": "PUT", "url": f"{rtype}?{query}"}
        identity: tuple[str, ...] | None = ("identifier", rtype, system, value)
        interaction = f"PUT {rtype}?identifier"
    elif mode == "conditional_create" and identifier is not None and query is not None:
        system, value = identifier
        request = {"method": "POST", "url": rtype, "ifNoneExist": query}
        identity = ("identifier", rtype, system, value)
        interaction = f"POST {rtype} (If-None-Exist identifier)"
    elif mode == "upsert" and isinstance(resource.get("id"), str) and _RESOURCE_ID.match(resource["id"]):
        rid = resource["id"]
        request = {"method": "PUT", "url": f"{rtype}/{rid}"}
        identity = ("id", rtype, rid)
        interaction = f"PUT {rtype}/id"
    else:
        # A plain create never targets an existing resource, so it has no identity to keep apart.
        request = {"method": "POST", "url": rtype}
        identity = None
        interaction = f"POST {rtype}"
    entry = {"resource": body, "request": request}
    encoded = encode_entry(entry)
    if isinstance(encoded, errors.FhirStoreError):
        return _invalid(f"{rtype}: {encoded.detail}")
    return PreparedEntry(position, entry, rtype, identity, interaction, encoded, source_time)


def encode_entry(entry: Mapping[str, Any]) -> bytes | errors.FhirStoreError:
    """The entry as compact UTF-8 JSON, or an invalid_item error naming the exception type (never a value)."""
    try:
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        return _invalid(f"the resource cannot be encoded as JSON ({type(exc).__name__})")


def with_source_time(resource: Mapping[str, Any], source_time_ms: int) -> dict[str, Any]:
    """A copy of `resource` whose meta.tag carries `source_time_ms` (replacing an earlier source-time tag)."""
    body = dict(resource)
    meta = dict(body.get("meta") or {}) if isinstance(body.get("meta"), Mapping) else {}
    tags = [t for t in meta.get("tag") or [] if not (isinstance(t, Mapping) and t.get("system") == SOURCE_TIME_SYSTEM)]
    tags.append({"system": SOURCE_TIME_SYSTEM, "code": str(source_time_ms)})
    meta["tag"] = tags
    body["meta"] = meta
    return body


def stored_source_time(resource: Mapping[str, Any]) -> int | None:
    """The newest source time among a stored resource's source-time tags (a server may keep old ones)."""
    meta = resource.get("meta")
    times = []
    for tag in (meta.get("tag") if isinstance(meta, Mapping) else None) or []:
        if isinstance(tag, Mapping) and tag.get("system") == SOURCE_TIME_SYSTEM:
            code = tag.get("code")
            if isinstance(code, str) and code.isascii() and code.lstrip("-").isdigit():
                times.append(int(code))
    return max(times) if times else None


def is_guarded(entry: PreparedEntry, mode: str) -> bool:
    """Does this entry need the store's current state before it is written (upsert by identifier with a
    source time)?"""
    return (
        mode == "upsert"
        and entry.source_time_ms is not None
        and entry.identity is not None
        and (entry.identity[0] == "identifier")
    )


def guarded_create(entry: PreparedEntry, *, unread: bool = False) -> PreparedEntry:
    """A guarded entry as a create of its resource unless one with its identifier exists (If-None-Exist):
    what to send when the store holds none, and what answers 200 without writing when it does. `unread`:
    sent without reading the store first."""
    _, rtype, _, _ = entry.identity or ("", entry.resource_type, "", "")
    query = entry.entry["request"]["url"].split("?", 1)[1]
    request: dict[str, Any] = {"method": "POST", "url": rtype, "ifNoneExist": query}
    created = _rebuilt(entry, dict(entry.entry["resource"]), request, "create", f"POST {rtype} (guarded create)")
    return replace(created, unread=unread)


def guarded_entry(entry: PreparedEntry, matches: Sequence[Mapping[str, Any]]) -> PreparedEntry | Mapping[str, Any]:
    """What to send for a guarded entry given the stored resources matching its identifier, or the stored
    resource itself when it holds newer data (the entry is superseded and nothing is sent).

    More than one match is left to the conditional update, whose 412 reports the duplicate.
    """
    if len(matches) > 1:
        return entry
    if not matches:
        return guarded_create(entry)
    _, rtype, _, _ = entry.identity or ("", entry.resource_type, "", "")
    resource = dict(entry.entry["resource"])
    stored = matches[0]
    stored_time = stored_source_time(stored)
    if stored_time is not None and entry.source_time_ms is not None and stored_time > entry.source_time_ms:
        return stored
    rid = stored.get("id")
    if not (isinstance(rid, str) and _RESOURCE_ID.match(rid)):
        return entry
    resource["id"] = rid
    request = {"method": "PUT", "url": f"{rtype}/{rid}"}
    meta = stored.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    if isinstance(version, str) and version:
        request["ifMatch"] = f'W/"{version}"'
    return _rebuilt(entry, resource, request, "update", f"PUT {rtype}/id (guarded update)")


def superseded_outcome(item: WriteItem, stored: Mapping[str, Any], attempts: int) -> WriteOutcome:
    meta = stored.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    rtype, rid = stored.get("resourceType"), stored.get("id")
    return WriteOutcome(
        key=item.key,
        ok=True,
        status=200,
        location=f"{rtype}/{rid}" + (f"/_history/{version}" if version else ""),
        resource_type=rtype if isinstance(rtype, str) else None,
        resource_id=rid if isinstance(rid, str) else None,
        version_id=version if isinstance(version, str) else None,
        attempts=attempts,
        superseded=True,
    )


def _rebuilt(
    entry: PreparedEntry, resource: dict[str, Any], request: dict[str, Any], guard: str, interaction: str
) -> PreparedEntry:
    new = {"resource": resource, "request": request}
    encoded = encode_entry(new)
    if isinstance(encoded, errors.FhirStoreError):  # cannot happen: the same resource encoded before
        return entry
    return replace(entry, entry=new, body=encoded, guard=guard, interaction=interaction)


def plan_rounds(entries: Sequence[PreparedEntry]) -> list[list[PreparedEntry]]:
    """Rounds of entries in which each identity appears at most once; input order kept inside each round."""
    seen: dict[tuple[str, ...], int] = {}
    rounds: list[list[PreparedEntry]] = []
    for entry in entries:
        n = 0
        if entry.identity is not None:
            n = seen.get(entry.identity, 0)
            seen[entry.identity] = n + 1
        while len(rounds) <= n:
            rounds.append([])
        rounds[n].append(entry)
    return rounds


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def batch_bundle_bytes(entries: Sequence[PreparedEntry]) -> bytes:
    """The batch Bundle as JSON bytes, joined from the entries' encodings (nothing is encoded again)."""
    return b'{"resourceType":"Bundle","type":"batch","entry":[' + b",".join(e.body for e in entries) + b"]}"


def read_batch_response(body: Any, expected: int) -> list[EntryResponse]:  # noqa: ANN401  (parsed JSON)
    """One EntryResponse per request entry, in request order (FHIR requires the same order and count).

    Raises ValueError when the body is not a batch-response of `expected` entries: then nothing can be
    attributed to a message and the caller treats the whole bundle as failed.
    """
    if not isinstance(body, Mapping) or body.get("resourceType") != "Bundle":
        raise ValueError("the response is not a Bundle")
    if body.get("type") not in ("batch-response", None):
        raise ValueError("the response Bundle is not a batch-response")
    entries = body.get("entry") or []
    if not isinstance(entries, list) or len(entries) != expected:
        raise ValueError(
            f"the batch-response has {len(entries) if isinstance(entries, list) else 0} entries, expected {expected}"
        )
    return [_entry_response(e) for e in entries]


def parse_status(text: Any) -> int | None:  # noqa: ANN401
    """`201 Created` -> 201; None if there is no leading 3-digit code."""
    if isinstance(text, int):
        return text
    if not isinstance(text, str):
        return None
    head = text.strip().split(" ", 1)[0]
    return int(head) if len(head) == 3 and head.isdigit() else None


def parse_location(location: str | None) -> tuple[str | None, str | None, str | None]:
    """(type, id, version) from `Patient/1/_history/2` or an absolute URL ending that way."""
    if not location:
        return None, None, None
    path = urlsplit(location).path if "://" in location else location.split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    version = None
    if len(parts) >= 2 and parts[-2] == "_history":
        version = parts[-1]
        parts = parts[:-2]
    if len(parts) >= 2 and _RESOURCE_TYPE.match(parts[-2]):
        return parts[-2], parts[-1], version
    return None, None, version


def parse_etag(etag: str | None) -> str | None:
    """The version in an ETag such as `W/"3"`."""
    if not etag:
        return None
    match = _ETAG_VERSION.match(etag.strip())
    return match.group(1) if match else None


def read_version(entry: PreparedEntry) -> str | None:
    """The stored version a guarded update was decided from (its `ifMatch`), None for any other entry."""
    if entry.guard != "update":
        return None
    if_match = entry.entry["request"].get("ifMatch")
    return parse_etag(if_match) if isinstance(if_match, str) else None


def kept_version(entry: PreparedEntry, response: EntryResponse) -> bool:
    """Did the store answer a guarded update with the version it was decided from? Then it made no new
    version: the content sent was what it held. Without a version to compare (an unguarded upsert, a store
    that names none), a success counts as a write."""
    read = read_version(entry)
    return read is not None and response.ok and response.version_id == read


def ok_outcome(item: WriteItem, response: EntryResponse, attempts: int, *, unchanged: bool = False) -> WriteOutcome:
    rtype, rid, _ = parse_location(response.location)
    return WriteOutcome(
        key=item.key,
        ok=True,
        status=response.status,
        location=response.location,
        resource_type=rtype,
        resource_id=rid,
        version_id=response.version_id,
        attempts=attempts,
        unchanged=unchanged,
    )


def error_outcome(item: WriteItem, error: errors.FhirStoreError, attempts: int) -> WriteOutcome:
    return WriteOutcome(
        key=item.key, ok=False, status=error.http_status, attempts=attempts, error=error.with_attempts(attempts)
    )


def _entry_response(entry: Any) -> EntryResponse:  # noqa: ANN401
    response = entry.get("response") if isinstance(entry, Mapping) else None
    if not isinstance(response, Mapping):
        raise ValueError("a batch-response entry has no response")
    status = parse_status(response.get("status"))
    if status is None:
        raise ValueError("a batch-response entry has no status code")
    return EntryResponse(
        status=status,
        location=response.get("location") if isinstance(response.get("location"), str) else None,
        etag=response.get("etag") if isinstance(response.get("etag"), str) else None,
        last_modified=response.get("lastModified") if isinstance(response.get("lastModified"), str) else None,
        outcome=errors.as_operation_outcome(response.get("outcome")),
    )


def _escape_token(part: str, *, dollar: bool = True) -> str:
    escaped = part.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,")
    return escaped.replace("$", "\\$") if dollar else escaped


def _identifier_problem(identifier: Any, resource: Mapping[str, Any]) -> str | None:  # noqa: ANN401
    if not (isinstance(identifier, tuple | list) and len(identifier) == 2):
        return "the business identifier must be a (system, value) pair"
    system, value = identifier
    if not (isinstance(system, str) and system and isinstance(value, str) and value):
        return "the business identifier needs a non-empty system and value"
    if "|" in system:
        # Not a URI, and no server matches it: HAPI refuses every conditional write on such a system.
        return "the business identifier's system contains |"
    # The identifier must be on the resource, or the next conditional write would not find what this one
    # wrote and idempotency would be silently lost.
    for ident in resource.get("identifier") or []:
        if isinstance(ident, Mapping) and ident.get("system") == system and ident.get("value") == value:
            return None
    return "the business identifier is not among the resource's identifiers"


def _invalid(detail: str) -> errors.FhirStoreError:
    return errors.FhirStoreError(code=errors.INVALID_ITEM, retryable=False, detail=detail, attempts=0)
