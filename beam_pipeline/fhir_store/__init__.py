"""FHIR store I/O: a batched, idempotent, retrying client for the Google Cloud Healthcare API and any
FHIR R4 server (docs/fhir-store-client.md).

    config = FhirStoreConfig(base_url="http://127.0.0.1:8080/fhir")
    with FhirStoreClient(config) as client:
        outcomes = client.write([WriteItem(patient, ("urn:example:mrn", "123"), key=offset)])
"""

from beam_pipeline.fhir_store.bundles import WriteItem, WriteOutcome
from beam_pipeline.fhir_store.client import CapabilityReport, ClientStats, FhirStoreClient
from beam_pipeline.fhir_store.config import AuthConfig, FhirStoreConfig, HealthcareApiStore
from beam_pipeline.fhir_store.errors import FhirStoreError
from beam_pipeline.fhir_store.retry import RetryPolicy

__all__ = [
    "AuthConfig",
    "CapabilityReport",
    "ClientStats",
    "FhirStoreClient",
    "FhirStoreConfig",
    "FhirStoreError",
    "HealthcareApiStore",
    "RetryPolicy",
    "WriteItem",
    "WriteOutcome",
]
