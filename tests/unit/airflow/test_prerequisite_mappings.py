"""The launch's `mappings` prerequisite: the job's mapping set compiles against US Core and maps its samples
before any job starts, and a broken one stops the launch naming the file, the line and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from unittest import mock

import pytest
from k2f_airflow import prerequisites
from k2f_airflow.launch_flags import pipeline_options

ROOT = Path(__file__).resolve().parents[3]


def _copy_of_the_shipped_set(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", folder)
    return folder


def test_the_shipped_set_passes_and_says_what_it_checked(local_cfg):
    summary = prerequisites.mappings(local_cfg)
    assert "mappings and" in summary and "samples mapped" in summary and "terminology files" in summary


def test_a_misspelt_element_stops_the_launch_with_the_file_and_line(local_cfg, tmp_path):
    folder = _copy_of_the_shipped_set(tmp_path)
    mapping = folder / "synthea" / "encounter.yaml"
    lines = mapping.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip().startswith("status:"))
    lines[line - 1] = lines[line - 1].replace("status:", "statuz:")
    mapping.write_text("\n".join(lines) + "\n")
    cfg = local_cfg.with_overrides({"mappings": str(folder)})
    with pytest.raises(prerequisites.PrerequisiteFailed) as failed:
        prerequisites.mappings(cfg)
    message = str(failed.value)
    assert f"synthea/encounter.yaml:{line}:" in message and "did you mean 'status'" in message


def test_a_sample_that_no_longer_maps_stops_the_launch(local_cfg, tmp_path):
    folder = _copy_of_the_shipped_set(tmp_path)
    mapping = folder / "synthea" / "immunization.yaml"
    mapping.write_text(
        mapping.read_text().replace("- required: [PATIENT, DATE, CODE]", "- required: [PATIENT, DATE, CODE, LOT]")
    )
    with pytest.raises(prerequisites.PrerequisiteFailed) as failed:
        prerequisites.mappings(local_cfg.with_overrides({"mappings": str(folder)}))
    assert "immunization.yaml:" in str(failed.value) and "this sample does not map" in str(failed.value)
    assert "missing_required_field" in str(failed.value)


def test_a_location_that_is_not_a_set_stops_the_launch(local_cfg, tmp_path):
    with pytest.raises(prerequisites.PrerequisiteFailed) as failed:
        prerequisites.mappings(local_cfg.with_overrides({"mappings": str(tmp_path / "nowhere")}))
    assert "nowhere" in str(failed.value) and "--mappings takes a folder" in str(failed.value)


def test_a_gcs_set_is_read_from_its_prefix(local_cfg):
    class Blob:
        def __init__(self, name: str, text: str) -> None:
            self.name, self._text = name, text

        def download_as_text(self, encoding: str) -> str:
            return self._text

    files = [p for p in (ROOT / "mappings").rglob("*") if p.is_file()]
    blobs = [Blob("feeds/v2/" + p.relative_to(ROOT / "mappings").as_posix(), p.read_text()) for p in files]
    client = mock.Mock()
    client.list_blobs.return_value = blobs
    with mock.patch("google.cloud.storage.Client", return_value=client):
        summary = prerequisites.mappings(local_cfg.with_overrides({"mappings": "gs://sets/feeds/v2"}))
    client.list_blobs.assert_called_once_with("sets", prefix="feeds/v2/")
    assert "gs://sets/feeds/v2" in summary


def test_the_launch_passes_the_set_to_the_job(local_cfg):
    assert "mappings" not in pipeline_options(local_cfg)
    assert (
        pipeline_options(local_cfg.with_overrides({"mappings": "gs://sets/feeds/v2"}))["mappings"]
        == "gs://sets/feeds/v2"
    )


def test_a_sample_whose_resource_breaks_its_profile_stops_the_launch_naming_the_element(local_cfg, tmp_path):
    folder = _copy_of_the_shipped_set(tmp_path)
    mapping = folder / "synthea" / "immunization.yaml"
    lines = mapping.read_text().splitlines()
    # US Core requires Immunization.status: the template no longer writes it.
    status = next(i for i, text in enumerate(lines) if text.strip() == "status: completed")
    del lines[status]
    sample = next(i for i, text in enumerate(lines, 1) if text.strip().startswith("- {"))
    mapping.write_text("\n".join(lines) + "\n")
    with pytest.raises(prerequisites.PrerequisiteFailed) as failed:
        prerequisites.mappings(local_cfg.with_overrides({"mappings": str(folder)}))
    message = str(failed.value)
    assert f"synthea/immunization.yaml:{sample}:" in message
    assert "us-core-immunization" in message and "Immunization.status" in message and "cardinality" in message
    assert "fix the resource's template" in message
