"""Another implementation guide package is compiled and checked the same way, with no code change."""

from __future__ import annotations

import copy
import io
import json
import tarfile

from beam_pipeline.us_core.terminology import US_CORE_PATIENT
from beam_pipeline.validation.compiler import Compiler
from beam_pipeline.validation.package import definitions, load
from beam_pipeline.validation.validator import ProfileValidator
from tests.support.validation_corpus import golden_resources

URL = "http://example.org/fhir/StructureDefinition/strict-patient"


def _package(tmp_path):
    # A profile on US Core Patient that also requires birthDate and a telecom, as a guide would publish it.
    profile = copy.deepcopy(definitions().structures[US_CORE_PATIENT])
    profile.update(url=URL, name="StrictPatient", baseDefinition=US_CORE_PATIENT)
    for element in profile["snapshot"]["element"]:
        if element["id"] in ("Patient.birthDate", "Patient.telecom"):
            element["min"] = 1
    path = tmp_path / "example.strict-0.1.0.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, content in (
            ("package/package.json", {"name": "example.strict"}),
            ("package/StructureDefinition-strict-patient.json", profile),
        ):
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_profile_from_another_package(tmp_path):
    validator = ProfileValidator(URL, Compiler(load([_package(tmp_path)])))
    patient = copy.deepcopy(next(r for p, r in golden_resources() if p == US_CORE_PATIENT))
    patient.pop("telecom", None)
    issues = [(i.path, i.key) for i in validator.validate(patient).errors]
    assert ("Patient.telecom", "cardinality") in issues
