"""Google Cloud Healthcare API specifics: URLs, scopes, headers and the store-configuration check.

The FHIR REST API of a store lives under
  {endpoint}/{version}/projects/{p}/locations/{l}/datasets/{d}/fhirStores/{s}/fhir
(executeBundle is a POST of a batch Bundle to that base, search a GET of {base}/{type}), and the store's
own configuration, whose `version` says which FHIR release it holds, under the same path without /fhir.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEFAULT_ENDPOINT = "https://healthcare.googleapis.com"
# cloud-platform covers the Healthcare API and is what ADC from gcloud and GCE metadata grant by default.
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# The content type executeBundle requires; charset stated so non-ASCII names survive every proxy.
FHIR_JSON = "application/fhir+json;charset=utf-8"

# Resource IDs in the Healthcare API: letters, digits, and - _ . (dataset and store IDs are up to 256).
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")


def check_segment(name: str, value: str) -> None:
    """Reject values that would change the URL's shape ("a/b", "..", "?x")."""
    if not isinstance(value, str) or not _SEGMENT.match(value) or value in (".", ".."):
        raise ValueError(f"{name} must be a Healthcare API ID (letters, digits, - _ .)")


def store_name(project: str, location: str, dataset: str, store: str) -> str:
    return f"projects/{project}/locations/{location}/datasets/{dataset}/fhirStores/{store}"


def store_url(endpoint: str, version: str, project: str, location: str, dataset: str, store: str) -> str:
    """URL of the fhirStores.get method: the store's configuration."""
    return f"{endpoint.rstrip('/')}/{version}/{store_name(project, location, dataset, store)}"


def fhir_base_url(endpoint: str, version: str, project: str, location: str, dataset: str, store: str) -> str:
    """FHIR base URL of the store: the root of its FHIR REST interactions."""
    return store_url(endpoint, version, project, location, dataset, store) + "/fhir"


def store_config_problems(name: str, config: Mapping[str, Any]) -> list[str]:
    """What makes a store configuration unusable for this pipeline; empty when it is an R4 store."""
    version = config.get("version")
    if version != "R4":
        return [f"FHIR store {name} holds FHIR version {version or 'unknown'}, not R4"]
    return []
