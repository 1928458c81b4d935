"""Supporting a new message type is adding files, never Python: a copy of the shipped mappings/ folder plus one
mapping file (and one ConceptMap) for a made-up flat lab-result row maps that row to a US Core lab
Observation, through transform() and through the dry-run command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

# beam_pipeline.us_core first: importing beam_pipeline.mapping.mapping_set first is a circular import.
import beam_pipeline.us_core  # noqa: F401
from beam_pipeline.mapping.mapping_set import SHIPPED_FOLDER, compile_set, read_folder
from beam_pipeline.us_core import Error, Ok, TransformConfig, transform

ROOT = Path(__file__).resolve().parents[3]
LAB_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"

LAB_MAPPING = """\
# A flat lab result row, one per message: {"messageType": "lab-result", "mrn", "loinc", "name", "value", "unit",
# "flag" (H, L, N), "resultTime"} -> US Core 6.1.0 laboratory Observation.
id: lab-result
title: Observation from a flat lab result row
recognise:
  types: [lab-result]

validate:
  - fields: [mrn, loinc, name, value, unit, flag, resultTime]
  - required: [mrn, loinc, value, resultTime]
  - dates: [resultTime]
  - when: value.convertsToDecimal().not()
    code: non_numeric_value
    detail: value is not a number
  - when: flag.exists() and translate('lab-flag', flag.lower()).empty()
    code: unknown_code
    detail: flag is not in ConceptMap lab-flag

resources:
  - profiles: [http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab]
    resource:
      resourceType: Observation
      meta:
        profile: [http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab]
      identifier:
        - system: "{{ %naturalKeySystem }}"
          value: "{{ hashKey(%sourceIdSystem, 'lab-result', mrn, loinc, resultTime) }}"
      status: final
      category:
        - coding:
            - system: http://terminology.hl7.org/CodeSystem/observation-category
              code: laboratory
              display: Laboratory
      code:
        coding: [{system: http://loinc.org, code: "{{ loinc }}", display: "{{ name }}"}]
        text: "{{ name }}"
      subject: "{{ reference('Patient', %sourceIdSystem, mrn) }}"
      effectiveDateTime: "{{ resultTime.toDateTime() }}"
      valueQuantity:
        value: "{{ value.toDecimal() }}"
        unit: "{{ unit }}"
        system: "{{ iif(unit.exists(), 'http://unitsofmeasure.org') }}"
        code: "{{ unit }}"
      interpretation:
        - coding: ["{{ translate('lab-flag', flag.lower()) }}"]
"""

LAB_FLAG_MAP = {
    "resourceType": "ConceptMap",
    "id": "lab-flag",
    "url": "urn:kafka-to-fhir:ConceptMap/lab-flag",
    "version": "1",
    "name": "LabFlag",
    "status": "active",
    "group": [
        {
            "source": "urn:kafka-to-fhir:source-codes",
            "target": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "element": [
                {"code": "h", "target": [{"code": "H", "display": "High", "equivalence": "equivalent"}]},
                {"code": "l", "target": [{"code": "L", "display": "Low", "equivalence": "equivalent"}]},
                {"code": "n", "target": [{"code": "N", "display": "Normal", "equivalence": "equivalent"}]},
            ],
        }
    ],
}

LAB_ROW = {
    "messageType": "lab-result",
    "mrn": "LAB-MRN-0007",
    "loinc": "2345-7",
    "name": "Glucose [Mass/volume] in Serum or Plasma",
    "value": "142",
    "unit": "mg/dL",
    "flag": "H",
    "resultTime": "2024-03-05T08:15:00-05:00",
}


def _feed_folder(tmp_path: Path) -> Path:
    """The shipped mappings/ folder, copied, plus the new feed's two files."""
    folder = tmp_path / "mappings"
    shutil.copytree(SHIPPED_FOLDER, folder)
    (folder / "lab").mkdir()
    (folder / "lab" / "lab-result.yaml").write_text(LAB_MAPPING)
    (folder / "terminology" / "ConceptMap-lab-flag.json").write_text(json.dumps(LAB_FLAG_MAP, indent=1))
    return folder


def _check_observation(resource: dict) -> None:
    assert resource["resourceType"] == "Observation"
    assert resource["meta"]["profile"] == [LAB_PROFILE]
    assert resource["meta"]["tag"][0]["code"].startswith("lab-result@")
    assert resource["code"]["coding"][0]["code"] == "2345-7"
    assert resource["valueQuantity"] == {
        "value": 142,
        "unit": "mg/dL",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert resource["interpretation"][0]["coding"][0]["code"] == "H"
    assert resource["subject"] == {"reference": "Patient?identifier=urn:kafka-to-fhir:source-id|LAB-MRN-0007"}
    assert resource["effectiveDateTime"] == "2024-03-05T08:15:00-05:00"


def test_a_new_message_type_is_files_only(tmp_path):
    sources = read_folder(_feed_folder(tmp_path))
    assert any(s.name.endswith("/lab/lab-result.yaml") for s in sources.mappings)
    # The loader's full checks (elements against the FHIR models and the US Core profiles) pass.
    compile_set(sources, check_elements=True)
    config = TransformConfig(mappings=sources, structural_validation=True)

    result = transform(json.dumps(LAB_ROW).encode(), config=config)
    assert isinstance(result, Ok), result
    [mapped] = result.resources
    _check_observation(mapped.resource)
    assert mapped.identifier[0] == "urn:kafka-to-fhir:natural-key"

    # The new file's rules apply, with their codes.
    bad = transform(json.dumps({**LAB_ROW, "value": "high"}).encode(), config=config)
    assert isinstance(bad, Error) and (bad.code, bad.detail) == ("non_numeric_value", "value is not a number")
    # The copied feeds still map as they did.
    for sample in ("01_original_readme_sample.json", "20_adt_a01_admit.json"):
        raw = (ROOT / "include" / "sample_messages" / sample).read_bytes().strip()
        assert transform(raw, config=config).to_json() == transform(raw, config=TransformConfig()).to_json()


def test_without_the_files_the_type_is_unknown():
    result = transform(json.dumps(LAB_ROW).encode(), config=TransformConfig())
    assert isinstance(result, Error) and result.code == "unknown_message_type"


def test_dry_run_command_line_takes_the_folder(tmp_path):
    folder = _feed_folder(tmp_path)
    adt = (ROOT / "include" / "sample_messages" / "20_adt_a01_admit.json").read_bytes().strip()
    lines = json.dumps(LAB_ROW).encode() + b"\n" + adt + b"\n"
    done = subprocess.run(
        [sys.executable, "-m", "beam_pipeline.dry_run", "--mappings", str(folder), "--fail-on-error"],
        input=lines,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lab, admit = (json.loads(line) for line in done.stdout.decode().splitlines())
    assert lab["status"] == "ok" and len(lab["resources"]) == 1
    _check_observation(lab["resources"][0])
    assert [r["resourceType"] for r in admit["resources"]] == ["Patient", "Encounter"]
    assert "2 messages: 2 ok" in done.stderr.decode()
