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
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from beam_pipeline.fhir_store import errors

_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_RESOURCE_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ETAG_VERSION = re.compile(r'^(?:W/)?"([^"]+)"$')

T = TypeVar("T")


@dataclass(frozen=True)
class WriteItem:
    """One resource to write: its business identifier (system, value), if any, and an opaque `key` the
    caller uses to find the message it came from (returned untouched in the outcome)."""

    resource: Mapping[str, Any]
    identifier: tuple[str, str] | None = None
    key: Any = None


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
    """`system|value` for a token search, with FHIR's backslash escapes for | , $ and \\ inside each part."""
    return f"{_escape_token(system)}|{_escape_token(value)}"


def identifier_query(system: str, value: str) -> str:
    """The query string matching one identifier: `identifier=` plus the percent-encoded token."""
    return "identifier=" + quote(token_search_value(system, value), safe="")


def prepare_entry(
    item: WriteItem, position: int, mode: str, *, require_identifier: bool = False
) -> PreparedEntry | errors.FhirStoreError:
    """The bundle entry for `item`, or an invalid_item error (nothing will be sent for it)."""
    resource = item.resource
    if not isinstance(resource, Mapping):
        return _invalid("the item's resource is not a JSON object")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not _RESOURCE_TYPE.match(rtype):
        return _invalid("the item's resource has no valid resourceType")
    body = dict(resource)
    identifier = item.identifier
    if identifier is not None:
        problem = _identifier_problem(identifier, resource)
        if problem:
            return _invalid(f"{rtype}: {problem}")
    if mode != "create" and identifier is None and require_identifier:
        return _invalid(f"{rtype}: no business identifier, and {mode} requires one")

    if mode == "upsert" and identifier is not None:
        system, value = identifier
        url = f"{rtype}?{identifier_query(system, value)}"
        request = {"method": "PUT", "url": url}
        return PreparedEntry(
            position,
            {"resource": body, "request": request},
            rtype,
            ("identifier", rtype, system, value),
            f"PUT {rtype}?identifier",
        )
    if mode == "conditional_create" and identifier is not None:
        system, value = identifier
        request = {"method": "POST", "url": rtype, "ifNoneExist": identifier_query(system, value)}
        return PreparedEntry(
            position,
            {"resource": body, "request": request},
            rtype,
            ("identifier", rtype, system, value),
            f"POST {rtype} (If-None-Exist identifier)",
        )
    rid = resource.get("id")
    if mode == "upsert" and isinstance(rid, str) and _RESOURCE_ID.match(rid):
        request = {"method": "PUT", "url": f"{rtype}/{rid}"}
        return PreparedEntry(
            position, {"resource": body, "request": request}, rtype, ("id", rtype, rid), f"PUT {rtype}/id"
        )
    # A plain create never targets an existing resource, so it has no identity to keep apart.
    return PreparedEntry(
        position, {"resource": body, "request": {"method": "POST", "url": rtype}}, rtype, None, f"POST {rtype}"
    )


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


def batch_bundle(entries: Sequence[PreparedEntry]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": [e.entry for e in entries]}


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


def ok_outcome(item: WriteItem, response: EntryResponse, attempts: int) -> WriteOutcome:
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


def _escape_token(part: str) -> str:
    return part.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")


def _identifier_problem(identifier: Any, resource: Mapping[str, Any]) -> str | None:  # noqa: ANN401
    if not (isinstance(identifier, tuple | list) and len(identifier) == 2):
        return "the business identifier must be a (system, value) pair"
    system, value = identifier
    if not (isinstance(system, str) and system and isinstance(value, str) and value):
        return "the business identifier needs a non-empty system and value"
    # The identifier must be on the resource, or the next conditional write would not find what this one
    # wrote and idempotency would be silently lost.
    for ident in resource.get("identifier") or []:
        if isinstance(ident, Mapping) and ident.get("system") == system and ident.get("value") == value:
            return None
    return "the business identifier is not among the resource's identifiers"


def _invalid(detail: str) -> errors.FhirStoreError:
    return errors.FhirStoreError(code=errors.INVALID_ITEM, retryable=False, detail=detail, attempts=0)
