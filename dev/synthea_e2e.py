"""A Synthea population through Kafka into the FHIR store, the way a hospital's feed goes: every row published
in the exporter's own order (so rows come before the organizations, providers and payers they refer to),
then what landed, per resource type, against what the mapping writes.

`make demo-synthea` (dev/demo_synthea.py) and tests/integration/test_synthea_e2e.py share it. Counts are
of this run's resources only: everything a run writes is keyed under its `--source_id_system` (the
patient's and the directory's identifiers, and the hashed keys of the clinical rows through their patient).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from beam_pipeline.us_core import Ok, TransformConfig, transform
from dev.synthea_population import POPULATION, TABLE_TYPES, table_rows

# How a resource type of this run is counted: by its own identifier, or through its patient (a hashed
# business identifier names no run, the patient's does). A resource counted through its patient is also
# proof that its conditional reference resolved.
BY_IDENTIFIER = ("Patient", "Encounter", "CarePlan", "Organization", "Location", "Practitioner")
THROUGH_PATIENT = {
    "Condition": "subject",
    "Observation": "subject",
    "MedicationRequest": "subject",
    "Procedure": "subject",
    "Immunization": "patient",
    "AllergyIntolerance": "patient",
    "Device": "patient",
    "Coverage": "beneficiary",
}
# Tables without a patient column: the directory every patient's rows refer to, published whole.
DIRECTORY = ("organizations", "providers", "payers")
_PATIENT_COLUMN = {"patients": "Id", "claims": "PATIENTID", "claims_transactions": "PATIENTID"}


def patient_ids(folder: Path = POPULATION) -> list[str]:
    """The population's patients, in the patients table's order."""
    return [row["Id"] for row in table_rows("patients", folder)]


def population(folder: Path = POPULATION, patients: Collection[str] | None = None) -> list[bytes]:
    """Every row as a message, tables in the exporter's order; with `patients`, only those patients' rows
    (and the directory tables whole)."""
    rows, directory = population_parts(folder, patients)
    return rows + directory


def population_parts(
    folder: Path = POPULATION, patients: Collection[str] | None = None
) -> tuple[list[bytes], list[bytes]]:
    """population() in its two parts: the patients' rows, then the directory the exporter writes last."""
    rows: list[bytes] = []
    directory: list[bytes] = []
    for table in TABLE_TYPES:
        column = _PATIENT_COLUMN.get(table, "PATIENT")
        for row in table_rows(table, folder):
            if table in DIRECTORY:
                directory.append(json.dumps(row).encode())
            elif patients is None or row.get(column) in patients:
                rows.append(json.dumps(row).encode())
    return rows, directory


def expected_counts(messages: Iterable[bytes], config: TransformConfig) -> dict[str, int]:
    """Distinct resources per type the mapping writes for these messages (rows that write the same business
    identifier update one resource, as in the store)."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for raw in messages:
        outcome = transform(raw, config=config)
        if isinstance(outcome, Ok):
            for mapped in outcome.resources:
                seen.setdefault(mapped.resource["resourceType"], set()).add(mapped.identifier)
    return {rtype: len(ids) for rtype, ids in sorted(seen.items())}


def resource_total(base_url: str, rtype: str, params: Mapping[str, str]) -> int:
    """How many `rtype` resources the store finds for a search (its _summary=count, never cached)."""
    response = httpx.get(
        f"{base_url}/{rtype}",
        params={**params, "_summary": "count"},
        headers={"Cache-Control": "no-cache"},
        timeout=120,
    )
    response.raise_for_status()
    return int(response.json()["total"])


def store_counts(base_url: str, system: str, types: Iterable[str]) -> dict[str, int]:
    """This run's resources per type in the store, each found by the run's identifier system."""
    counts = {}
    for rtype in types:
        if rtype in THROUGH_PATIENT:
            params = {f"{THROUGH_PATIENT[rtype]}:Patient.identifier": f"{system}|"}
        else:
            params = {"identifier": f"{system}|"}
        counts[rtype] = resource_total(base_url, rtype, params)
    return counts


def linked_encounters(base_url: str, system: str) -> int:
    """This run's Encounters whose serviceProvider resolved to this run's Organization: the rows that came
    before their organization, linked."""
    return resource_total(
        base_url,
        "Encounter",
        {"identifier": f"{system}|", "service-provider:Organization.identifier": f"{system}|"},
    )


@dataclass
class Landing:
    """What a run published and what landed, with its timings (seconds)."""

    published: int
    expected: dict[str, int]
    landed: dict[str, int] = field(default_factory=dict)
    publish_seconds: float = 0.0
    total_seconds: float = 0.0  # first message published to every resource in the store
    after_last_row: float = 0.0  # the last batch published to every resource in the store
    complete: bool = False

    @property
    def rate(self) -> float:
        """Messages a second, from the first published to the last resource landed."""
        return self.published / self.total_seconds if self.total_seconds else 0.0


def publish_and_wait(  # noqa: PLR0913
    publish: Callable[[list[bytes]], int],
    batches: Sequence[list[bytes]],
    expected: dict[str, int],
    counts: Callable[[], dict[str, int]],
    timeout: float,
    progress: Callable[[str], None] = lambda _line: None,
    between: Callable[[], None] = lambda: None,
    poll: float = 5.0,
    settled: Callable[[], bool] = lambda: True,
) -> Landing:
    """Publish the batches in turn (calling `between` after each but the last), then look at the store
    until every expected resource is there (and `settled` says the job has settled what was published: on a
    rerun the resources are there before) or `timeout` passes."""
    landing = Landing(published=sum(len(b) for b in batches), expected=expected)
    start = time.monotonic()
    for n, batch in enumerate(batches):
        if n:
            between()
        publish(batch)
        progress(f"published {len(batch)} messages")
    published = time.monotonic()
    landing.publish_seconds = published - start
    deadline = published + timeout
    last_line = 0.0
    while True:
        landing.landed = counts()
        now = time.monotonic()
        if landing.landed == expected and settled():
            landing.complete = True
            break
        if now >= deadline:
            break
        if now - last_line >= 30:
            done, total = sum(landing.landed.values()), sum(expected.values())
            progress(f"{done} of {total} resources in the store after {now - start:.0f} s")
            last_line = now
        time.sleep(poll)
    landing.total_seconds = now - start
    landing.after_last_row = now - published
    return landing
