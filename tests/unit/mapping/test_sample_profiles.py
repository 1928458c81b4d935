"""The launch's check of a mapping set validates what each sample maps to against the profiles its
resources claim: a sample breaking one is a MappingError naming the file, the sample's line, the element
path, the rule and the fix, whatever the job's --profile_validation."""

from __future__ import annotations

import pytest

from beam_pipeline.mapping.check import load_checked
from beam_pipeline.mapping.feed import MappingError
from tests.support.broken_mapping import BAD_BIRTH_DATE, MAPPING_FILE, MISSING_GENDER, write_broken_set


def test_a_sample_breaking_its_profile_names_file_line_path_rule_and_fix(tmp_path):
    folder = write_broken_set(tmp_path, samples=[{"Id": "p-1", "LAST": "Lee", "BIRTH": "1970-01-01"}])
    lines = (folder / MAPPING_FILE).read_text().splitlines()
    sample_line = next(i for i, text in enumerate(lines, 1) if text.strip().startswith("- {"))
    with pytest.raises(MappingError) as failed:
        load_checked(str(folder))
    error = failed.value
    assert error.file.endswith(MAPPING_FILE) and error.line == sample_line
    path, key = MISSING_GENDER
    assert f"breaks profile us-core-patient at {path}, rule {key}" in str(error)
    assert "fix the resource's template" in str(error)


def test_every_error_of_the_sample_is_listed_and_no_value(tmp_path):
    folder = write_broken_set(tmp_path, samples=[{"Id": "p-1", "LAST": "Qzfamily", "BIRTH": "Qzbirth"}])
    with pytest.raises(MappingError) as failed:
        load_checked(str(folder))
    text = str(failed.value)
    assert all(f"{path} ({key})" in text for path, key in (MISSING_GENDER, BAD_BIRTH_DATE))
    assert "Qz" not in text


def test_the_shipped_samples_keep_their_profiles():
    _, mapping_set = load_checked(None)
    assert sum(len(m.samples) for m in mapping_set.mappings) > 0
