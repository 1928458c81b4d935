"""--profile_validation: each mapped resource against every profile it claims, in the transform and in the
mapping step (enforce: an error record validate/profile_violation; warn: written and counted; off:
nothing), with details that name element paths and rule keys, never a value."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam import pvalue
from apache_beam.options.pipeline_options import PipelineOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_pipeline import dry_run
from beam_pipeline.contracts.job_settings import PROFILE_VALIDATION_MODES
from beam_pipeline.contracts.outcome import INTERNAL_ERROR, PROFILE_VIOLATION, VALIDATE, MappedResource
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.reprocess import job_counters
from beam_pipeline.transforms.outputs import FAILED
from beam_pipeline.transforms.parse_and_map import MAP_COUNTERS, MapToFhir, ParseAndValidate, _MapFn, _ParseFn
from beam_pipeline.us_core import Error, Ok, TransformConfig, conformance, transform
from beam_pipeline.us_core.config import add_mapping_flags, config_from_flags
from beam_pipeline.validation import ERROR, Issue
from tests.support.broken_mapping import (
    BAD_BIRTH_DATE,
    MISSING_GENDER,
    US_CORE_PATIENT,
    broken_set,
    message,
    write_broken_set,
)

ROOT = Path(__file__).resolve().parents[3]
VITAL_SIGNS = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs"
BODY_WEIGHT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-body-weight"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return broken_set(tmp_path_factory.mktemp("broken"))


def _config(sources, mode: str) -> TransformConfig:
    return TransformConfig(mappings=sources, profile_validation=mode)


def _found(result) -> set[tuple[str, str]]:
    return {(f.issue.path, f.issue.key) for f in result.issues if f.issue.severity == ERROR}


def test_enforce_turns_a_resource_breaking_its_profile_into_a_profile_violation(sources):
    result = transform(message(BIRTH="01/02/1970"), config=_config(sources, "enforce"))
    assert isinstance(result, Error) and (result.stage, result.code) == (VALIDATE, PROFILE_VIOLATION)
    assert {MISSING_GENDER, BAD_BIRTH_DATE} <= _found(result)
    for path, key in (MISSING_GENDER, BAD_BIRTH_DATE):
        assert f"{path} ({key})" in result.detail
    assert result.detail.startswith("us-core-patient: ")


def test_warn_writes_the_resource_with_its_issues(sources):
    result = transform(message(), config=_config(sources, "warn"))
    assert isinstance(result, Ok) and len(result.resources) == 1
    assert _found(result) == {MISSING_GENDER}
    assert conformance.counter_names(result.issues) == {"profile_violation.us-core-patient.cardinality"}


def test_off_validates_nothing(sources):
    result = transform(message(BIRTH="not a date"), config=_config(sources, "off"))
    assert isinstance(result, Ok) and result.issues == ()


def test_a_resource_that_keeps_its_profile_passes_every_mode():
    raw = (ROOT / "include/sample_messages/01_original_readme_sample.json").read_bytes()
    for mode in PROFILE_VALIDATION_MODES:
        result = transform(raw, config=TransformConfig(profile_validation=mode))
        assert isinstance(result, Ok) and not _found(result), mode


def test_the_flag_takes_the_three_modes_and_defaults_to_enforce():
    parser = argparse.ArgumentParser()
    add_mapping_flags(parser)
    assert config_from_flags(parser.parse_args([])).profile_validation == "enforce"
    for mode in PROFILE_VALIDATION_MODES:
        assert config_from_flags(parser.parse_args([f"--profile_validation={mode}"])).profile_validation == mode
    with pytest.raises(SystemExit):
        parser.parse_args(["--profile_validation=strict"])
    with pytest.raises(ValueError, match="profile_validation"):
        TransformConfig(profile_validation="strict")


def test_a_profile_is_validated_once_and_not_again_through_its_base():
    assert conformance.to_validate((VITAL_SIGNS, BODY_WEIGHT, BODY_WEIGHT + "|6.1.0")) == (BODY_WEIGHT,)
    assert conformance.to_validate((US_CORE_PATIENT,)) == (US_CORE_PATIENT,)


def test_the_derived_profile_finds_every_error_its_base_finds():
    # What makes skipping the base safe: breaks of a body-weight Observation, each found by both.
    raw = (ROOT / "include/sample_messages/12_observation_body_weight.json").read_bytes()
    [mapped] = transform(raw, config=TransformConfig(profile_validation="off")).resources
    breaks = [
        lambda r: r["valueQuantity"].pop("code"),
        lambda r: r.pop("category"),
        lambda r: r.__setitem__("status", "bogus"),
        lambda r: r.pop("subject"),
        lambda r: r.__setitem__("effectiveDateTime", "yesterday"),
        lambda r: r.pop("valueQuantity"),
    ]
    for brk in breaks:
        resource = copy.deepcopy(mapped.resource)
        brk(resource)
        resource["meta"]["profile"] = [VITAL_SIGNS]
        base = {
            (f.issue.path, f.issue.key) for f in conformance.profile_issues([resource]) if f.issue.severity == ERROR
        }
        resource["meta"]["profile"] = [BODY_WEIGHT]
        derived = {(f.issue.path, f.issue.key) for f in conformance.profile_issues([resource])}
        assert derived and base <= derived


def test_an_unknown_profile_is_an_error_of_its_own():
    resource = {"resourceType": "Patient", "meta": {"profile": ["http://example.org/StructureDefinition/mine"]}}
    [found] = conformance.profile_issues([resource])
    assert (found.profile, found.issue.key, found.issue.severity) == ("mine", "profile", ERROR)


def test_the_detail_is_bounded_and_says_how_many_it_left_out():
    issues = [
        conformance.ProfileIssue(0, "us-core-patient", Issue(f"Patient.identifier[{i}].value", "cardinality", ERROR))
        for i in range(200)
    ]
    detail = conformance.violation_detail(issues)
    assert len(detail) <= conformance.MAX_DETAIL
    shown = detail.count("(cardinality)")
    assert 0 < shown < 200 and detail.endswith(f"(+{200 - shown} more)")
    assert conformance.violation_detail(issues[:2]).count("(cardinality)") == 2


class _Raising:
    def issues(self, resource):  # noqa: ANN001, ANN202
        raise ValueError(f"cannot read {resource['identifier'][0]['value']}")  # a text quoting data


def test_a_validator_that_raises_is_an_internal_error_naming_its_type(sources, monkeypatch):
    monkeypatch.setattr(conformance, "validator_for", lambda _url: _Raising())
    result = transform(message(Id="Qzsecret-id"), config=_config(sources, "enforce"))
    assert isinstance(result, Error) and (result.stage, result.code) == (VALIDATE, INTERNAL_ERROR)
    assert result.detail == "ValueError in profile validation"


def _map_step(sources, mode: str, raw: bytes) -> list:
    config = _config(sources, mode)
    parse, map_fn = _ParseFn(config, "job"), _MapFn(config, "job")
    map_fn.setup()
    [parsed] = list(parse.process(RawMessage("patients", 0, 7, 0, None, raw)))
    return list(map_fn.process(parsed))


def test_the_map_step_sends_a_violation_to_the_error_bucket_in_enforce(sources):
    [out] = _map_step(sources, "enforce", message())
    assert isinstance(out, pvalue.TaggedOutput) and out.tag == FAILED
    record = out.value
    assert (record.stage, record.code, record.retryable) == (VALIDATE, PROFILE_VIOLATION, False)
    assert "Patient.gender (cardinality)" in record.detail


def test_the_map_step_writes_the_resource_in_warn_and_off(sources):
    for mode in ("warn", "off"):
        [out] = _map_step(sources, mode, message())
        assert not isinstance(out, pvalue.TaggedOutput), mode
        assert [r.resource["resourceType"] for r in out.resources] == ["Patient"]


def test_no_validator_exception_escapes_the_map_step(sources, monkeypatch):
    monkeypatch.setattr(conformance, "validator_for", lambda _url: _Raising())
    [out] = _map_step(sources, "warn", message(Id="Qzsecret-id"))
    assert (out.value.stage, out.value.code) == (VALIDATE, INTERNAL_ERROR)
    assert "Qzsecret" not in out.value.detail and "ValueError" in out.value.detail


def _counters(sources, mode: str, raws: list[bytes]) -> dict[str, int]:
    config = _config(sources, mode)
    p = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    messages = p | beam.Create([RawMessage("patients", 0, i, 0, None, raw) for i, raw in enumerate(raws)])
    parsed = messages | ParseAndValidate(config, "job")
    _ = parsed.valid | MapToFhir(config, "job")
    result = p.run()
    result.wait_until_finish()
    return {k: v for k, v in job_counters(result).items() if k.startswith(f"{MAP_COUNTERS}/")}


def test_warn_counts_written_resources_per_profile_and_rule(sources):
    raws = [message(Id=f"p-{i}") for i in range(3)] + [message(Id="p-9", BIRTH="Qz 1st of May")]
    counters = _counters(sources, "warn", raws)
    assert counters[f"{MAP_COUNTERS}/profile_violation.us-core-patient.cardinality"] == 4
    assert counters[f"{MAP_COUNTERS}/profile_violation.us-core-patient.format"] == 1
    assert counters[f"{MAP_COUNTERS}/mapped.patient"] == 4
    # The labels: profile and rule only.
    assert not any("Qz" in name or "p-" in name for name in counters)


def test_enforce_counts_failures_not_violations(sources):
    counters = _counters(sources, "enforce", [message(Id="p-1"), message(Id="p-2")])
    assert counters[f"{MAP_COUNTERS}/failed.{PROFILE_VIOLATION}"] == 2
    assert not any("/profile_violation." in name for name in counters)


# Values no profile text holds ("Qz" starts none of its words), of any characters after that.
values = st.text(min_size=2, max_size=30).map(lambda text: "Qz" + text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ident=values, family=values, birth=values)
def test_no_value_reaches_a_detail_an_issue_or_a_counter(sources, ident, family, birth):
    result = transform(message(Id=ident, LAST=family, BIRTH=birth), config=_config(sources, "enforce"))
    if not isinstance(result, Error) or result.code != PROFILE_VIOLATION:
        return  # the mapping's own checks refused the value (control characters, ...)
    said = [result.detail, *conformance.counter_names(result.issues)]
    said += [text for f in result.issues for text in (f.issue.path, f.issue.key, f.issue.detail, f.profile)]
    for value in (ident, family, birth):
        assert not any(value in text or value.strip() in text for text in said)


def test_mapped_resources_are_checked_one_by_one_and_named_by_their_place():
    patient = json.loads(
        (ROOT / "tests/unit/us_core/golden/02_synthea_female_hispanic_widowed.expected.json").read_text()
    )
    good = patient["resources"][0]
    bad = copy.deepcopy(good)
    del bad["gender"]
    result = conformance.apply((MappedResource(good, None), MappedResource(bad, None)), "enforce")
    assert isinstance(result, Error)
    assert {(f.resource, f.issue.path) for f in result.issues if f.issue.severity == ERROR} == {(1, "Patient.gender")}


# -- the dry run ------------------------------------------------------------------------------------------


def _dry_run(tmp_path, capsys, *flags: str) -> tuple[list[dict], str]:
    folder = write_broken_set(tmp_path / "set")
    messages = tmp_path / "messages.ndjson"
    messages.write_bytes(message() + b"\n" + message(Id="p-2", BIRTH="Qz soon") + b"\n")
    code = dry_run.main(["--mappings", str(folder), "--input", str(messages), *flags])
    out, err = capsys.readouterr()
    assert code == 0
    return [json.loads(line) for line in out.splitlines()], err


def _listed(line: dict) -> set[tuple[str, str, str]]:
    return {(i["path"], i["key"], i["severity"]) for i in line.get("issues", ())}


def test_the_dry_run_prints_each_resources_issues_in_warn(tmp_path, capsys):
    lines, err = _dry_run(tmp_path, capsys, "--profile_validation", "warn")
    assert [line["status"] for line in lines] == ["ok", "ok"]
    assert (*MISSING_GENDER, "error") in _listed(lines[0]) and (*BAD_BIRTH_DATE, "error") not in _listed(lines[0])
    assert {(*MISSING_GENDER, "error"), (*BAD_BIRTH_DATE, "error")} <= _listed(lines[1])
    assert {(i["resource"], i["profile"]) for i in lines[1]["issues"]} == {(0, "us-core-patient")}
    assert "profile issues: 3 errors" in err


def test_the_dry_run_prints_the_violation_and_its_issues_in_enforce(tmp_path, capsys):
    lines, _ = _dry_run(tmp_path, capsys)  # enforce, the default
    assert [(line["status"], line["code"]) for line in lines] == [("error", PROFILE_VIOLATION)] * 2
    assert (*MISSING_GENDER, "error") in _listed(lines[0])
    assert "Qz soon" not in json.dumps(lines[1])


def test_the_dry_run_prints_no_issues_with_validation_off(tmp_path, capsys):
    lines, err = _dry_run(tmp_path, capsys, "--profile_validation=off")
    assert [line["status"] for line in lines] == ["ok", "ok"] and not any("issues" in line for line in lines)
    assert "profile issues" not in err


def test_the_streaming_job_and_a_reprocess_take_the_flag():
    from beam_pipeline.dataflow_kafka_to_fhirstore import KafkaToFhirOptions
    from beam_pipeline.reprocess import help_parser

    flags, _ = help_parser().parse_known_args(["--topics=t", "--profile_validation=warn"])
    assert config_from_flags(flags).profile_validation == "warn"
    options = PipelineOptions(["--profile_validation=off"]).view_as(KafkaToFhirOptions)
    assert config_from_flags(options).profile_validation == "off"
    assert config_from_flags(PipelineOptions([]).view_as(KafkaToFhirOptions)).profile_validation == "enforce"


def test_the_pipelines_reading_of_a_validator_gives_the_issues_validate_gives():
    from beam_pipeline.validation import validator_for

    patient = json.loads(
        (ROOT / "tests/unit/us_core/golden/02_synthea_female_hispanic_widowed.expected.json").read_text()
    )
    good = patient["resources"][0]
    broken = copy.deepcopy(good) | {"gender": "F", "birthDate": "soon"}
    validator = validator_for(US_CORE_PATIENT)
    for resource in (good, broken, {"resourceType": "Observation"}, ["not", "a", "resource"]):
        assert validator.issues(resource) == validator.validate(resource).issues
