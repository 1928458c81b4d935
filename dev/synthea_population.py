"""The committed Synthea 3.3.0 population (tests/data/synthea-10) as the raw messages our feed reads: one JSON
object per CSV row, its columns as keys (as the exporter writes them, empty as ""), MESSAGE_TYPE the table's
type name."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

POPULATION = Path(__file__).resolve().parents[1] / "tests" / "data" / "synthea-10"

# Synthea 3.3.0's CSVExporter writes, per person, the patient, then per encounter the encounter, its claim
# (and the claim's transactions), conditions, allergies, observations, procedures, medications,
# immunizations, care plans, imaging studies, devices and supplies, then the person's payer transitions and
# yearly expenses; organizations, providers and payers only once every person is done. Reading the files
# in that order keeps the exporter's worst case: rows arrive before the organizations, providers and payers
# they refer to. Values: the MESSAGE_TYPE of the table's rows.
TABLE_TYPES: dict[str, str] = {
    "patients": "patient",
    "encounters": "encounter",
    "claims": "claim",
    "claims_transactions": "claim_transaction",
    "conditions": "condition",
    "allergies": "allergy",
    "observations": "observation",
    "procedures": "procedure",
    "medications": "medication",
    "immunizations": "immunization",
    "careplans": "careplan",
    "imaging_studies": "imaging_study",
    "devices": "device",
    "supplies": "supply",
    "payer_transitions": "payer_transition",
    "patient_expenses": "patient_expense",
    "organizations": "organization",
    "providers": "provider",
    "payers": "payer",
}


def _text(folder: Path, table: str) -> str:
    plain = folder / f"{table}.csv"
    if plain.exists():
        return plain.read_text(encoding="utf-8")
    # claims_transactions is committed gzipped: 5 MB as text (tests/data/synthea-10/README.md).
    return gzip.decompress((folder / f"{table}.csv.gz").read_bytes()).decode("utf-8")


def table_rows(table: str, folder: Path = POPULATION) -> list[dict[str, Any]]:
    """One table's rows as messages, in file order."""
    kind = TABLE_TYPES[table]
    return [{"MESSAGE_TYPE": kind, **row} for row in csv.DictReader(io.StringIO(_text(folder, table)))]


def messages(folder: Path = POPULATION) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, message) for every row of every table, tables in the exporter's order."""
    for table in TABLE_TYPES:
        for row in table_rows(table, folder):
            yield table, row
