"""Searches on the read store (one page, every match of an identifier, a count), and reading searchset
pages: which entries matched and where the next page is. The guard's lookups read their pages here too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from beam_pipeline.fhir_store import bundles, errors
from beam_pipeline.fhir_store.exchange import StoreHttp


def search(
    http: StoreHttp, read_base: str, resource_type: str, params: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One page of a search on the read store: the searchset Bundle."""
    check_type(resource_type)
    return http.get_json(f"{read_base}/{resource_type}", params=dict(params or {}), what=f"search {resource_type}")


def search_by_identifier(
    http: StoreHttp, read_base: str, resource_type: str, system: str, value: str, *, max_pages: int = 10
) -> list[dict[str, Any]]:
    """Resources of `resource_type` on the read store carrying identifier system|value (matches only, no
    included resources), following `next` links on the same server up to `max_pages` pages."""
    page = search(http, read_base, resource_type, {"identifier": bundles.token_search_value(system, value)})
    found: list[dict[str, Any]] = []
    for _ in range(max_pages):
        found.extend(matches(page, resource_type))
        next_url = link(page, "next")
        if not next_url or not same_origin(next_url, read_base):
            break
        page = http.get_json(next_url, params=None, what=f"search {resource_type} (next page)")
    return found


def count(http: StoreHttp, read_base: str, resource_type: str, params: Mapping[str, str] | None = None) -> int:
    """How many resources match (`_summary=count`)."""
    bundle = search(http, read_base, resource_type, {**(params or {}), "_summary": "count"})
    total = bundle.get("total")
    if not isinstance(total, int):
        raise errors.FhirStoreError(
            code=errors.INVALID_RESPONSE,
            retryable=False,
            detail="the count search returned no total",
            endpoint=f"GET {errors.redact_url(read_base)}",
        )
    return total


def matches(page: Mapping[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """The resources of a searchset page that matched (not _include'd ones)."""
    out = []
    for entry in page.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        mode = (entry.get("search") or {}).get("mode", "match") if isinstance(entry, Mapping) else None
        if isinstance(resource, dict) and resource.get("resourceType") == resource_type and mode == "match":
            out.append(resource)
    return out


def link(bundle: Mapping[str, Any], relation: str) -> str | None:
    for entry in bundle.get("link") or []:
        if isinstance(entry, Mapping) and entry.get("relation") == relation and isinstance(entry.get("url"), str):
            return entry["url"]
    return None


def same_origin(url: str, base: str) -> bool:
    # Paging links must not lead the token to another host.
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def check_type(resource_type: str) -> None:
    if not (resource_type.isascii() and resource_type.isalpha() and resource_type[:1].isupper()):
        raise ValueError("resource_type must be a FHIR resource type name such as Patient")
