"""A mapping set whose one mapping writes Patients that break US Core: its template leaves out the gender
the profile requires, and writes BIRTH into birthDate as it comes (any text, so a format error when it is
not a date). For the tests of --profile_validation; the set lives in a tmp folder."""

from __future__ import annotations

import json
from pathlib import Path

from beam_pipeline.mapping.mapping_set import MappingSources, read_folder
from beam_pipeline.us_core.terminology import US_CORE_PATIENT

MAPPING_FILE = "test/broken-patient.yaml"
# What the Patient lacks, as the validator names it (element path, rule key).
MISSING_GENDER = ("Patient.gender", "cardinality")
BAD_BIRTH_DATE = ("Patient.birthDate", "format")

_MAPPING = f"""\
id: test-broken-patient
title: A Patient without the gender US Core requires
recognise:
  types: [patient]
  default: true
validate:
  - required: [Id]
    code: missing_source_id
resources:
  - profiles: [{US_CORE_PATIENT}]
    resource:
      resourceType: Patient
      meta:
        profile: [{US_CORE_PATIENT}]
      identifier:
        - system: "{{{{ %sourceIdSystem }}}}"
          value: "{{{{ Id }}}}"
      name:
        - family: "{{{{ LAST }}}}"
      birthDate: "{{{{ BIRTH }}}}"
"""


def write_broken_set(folder: Path, samples: list[dict[str, str]] | None = None) -> Path:
    """The set's files under `folder`; `samples` become the mapping's samples (none by default)."""
    text = _MAPPING
    if samples:
        text += "samples:\n" + "".join(f"  - {json.dumps(sample)}\n" for sample in samples)
    path = folder / MAPPING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    (folder / "terminology").mkdir(exist_ok=True)
    return folder


def broken_set(folder: Path) -> MappingSources:
    return read_folder(write_broken_set(folder))


def message(**fields: str) -> bytes:
    """A raw patient message for the broken set: Id, LAST and BIRTH unless overridden."""
    return json.dumps({"Id": "p-1", "LAST": "Lee", "BIRTH": "1970-01-01"} | fields).encode()
