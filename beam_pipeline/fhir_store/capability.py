"""Is the store reachable and FHIR R4: the check the launch and health DAGs run before trusting a store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from beam_pipeline.fhir_store import errors, healthcare_api
from beam_pipeline.fhir_store.config import FhirStoreConfig
from beam_pipeline.fhir_store.exchange import StoreHttp
from beam_pipeline.fhir_store.retry import RetryPolicy


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


def check_store(http: StoreHttp, config: FhirStoreConfig, retry: RetryPolicy) -> CapabilityReport:
    """Is the store reachable and FHIR R4? Never raises for a store problem: the report lists it.

    Healthcare API: each store's configuration must exist with version R4, and the write store's FHIR API
    must answer /metadata. Any other server: /metadata of the write (and a distinct read) base must answer
    with a CapabilityStatement for FHIR 4.0.x.
    """
    problems: list[str] = []
    hc = config.healthcare_api
    if hc is not None:
        for store in dict.fromkeys((hc.write_store, hc.effective_read_store)):
            name = healthcare_api.store_name(hc.project_id, hc.location, hc.dataset, store)
            try:
                store_config = http.get_json(hc.store_url(store), None, f"get FHIR store {store}", retry)
            except errors.FhirStoreError as exc:
                if exc.http_status == 404:
                    problems.append(f"FHIR store {name} does not exist")
                else:
                    problems.append(f"FHIR store {name} could not be read: {exc}")
                continue
            problems.extend(healthcare_api.store_config_problems(name, store_config))
    bases = [config.write_base]
    if hc is None and config.read_base != config.write_base:
        bases.append(config.read_base)
    reachable = True
    version = software = None
    for i, base in enumerate(bases):
        try:
            statement = http.get_json(f"{base}/metadata", None, "capability statement", retry)
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
