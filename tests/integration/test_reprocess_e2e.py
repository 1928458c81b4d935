"""Reprocess end to end on the local stack: an archive in the GCS emulator, in the archive line format with a
corrupt line among them, and one Patient a later message wrote; a dry run of it (which writes nothing), a
reprocess through the k2f_reprocess DAG (triggered through Airflow's REST API, as a user does), then the same
again with `python -m beam_pipeline.reprocess`, which changes nothing. And a mapping set whose Patients
break US Core: under --profile_validation=enforce each message is an error record validate/profile_violation.

The DAG's job runs its Python steps on the stack's worker pool (the code of the checkout that started the
stack); the command runs them in the test's own process (LOOPBACK), this checkout's code.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from beam_pipeline.contracts.outcome import CORRUPT_ARCHIVE_LINE, PROFILE_VIOLATION, REPROCESS, VALIDATE
from dev.airflow_api import AirflowApi, local_config
from dev.history_archive import (
    archive_objects,
    archived,
    corrupt_line,
    day_start_ms,
    mapping_tag,
    upload,
    with_line,
    yesterday,
)
from dev.local_stack import fhir_count, ndjson_lines, run_reprocess, stored_resources, write_patients
from dev.reprocess_checks import CREATED, UNCHANGED, Stored, by_value, store_problems, stored, summary_problems
from dev.synthetic import synthetic_rows
from tests.support.broken_mapping import MISSING_GENDER, write_broken_set

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
TOPIC = f"reprocess-{RUN}"
SYSTEM = f"urn:k2f-reprocess:{RUN}"
MESSAGES = 300
PER_OBJECT = 100
LATER = 1  # Patients of the history a later message wrote: left alone
DAY = yesterday()
RANGE = {"from": DAY.isoformat(), "to": (DAY + timedelta(days=1)).isoformat()}
CORRUPT = {f"{REPROCESS}.{CORRUPT_ARCHIVE_LINE}": 1}


def _archive(env: dict[str, str]) -> tuple[list[bytes], set[str]]:
    """MESSAGES Patients in three objects, one corrupt line (the first object's sixth), one message of the day
    after the range. Returns the rows and their identifier values."""
    prefix = f"r{RUN}-"
    rows = synthetic_rows(MESSAGES, seed=31, id_prefix=prefix)
    objects = archive_objects(archived(TOPIC, rows, day_start_ms(DAY) + 3_600_000, 1000), PER_OBJECT, f"test-{RUN}")
    first = sorted(objects)[0]
    objects[first] = with_line(objects[first], 5, corrupt_line(TOPIC))
    next_day = day_start_ms(DAY + timedelta(days=1)) + 3_600_000
    late = synthetic_rows(1, seed=32, id_prefix=f"late-{RUN}-")
    objects.update(archive_objects(archived(TOPIC, late, next_day, 1), PER_OBJECT, f"test-{RUN}"))
    upload(env["GCS_ARCHIVE_BUCKET"], objects)
    return rows, {f"{prefix}{i:012d}" for i in range(MESSAGES)}


def _reprocess(env: dict[str, str], job_name: str, *flags: str, topic: str = TOPIC) -> dict[str, Any]:
    summary, _ = run_reprocess(
        env,
        job_name,
        f"--topics={topic}",
        f"--from={RANGE['from']}",
        f"--to={RANGE['to']}",
        f"--source_id_system={SYSTEM}",
        "--archive_window_seconds=5",
        *flags,
        loopback=True,
        timeout=180,
    )
    return summary


def _error_records(env: dict[str, str], job_name: str) -> list[dict[str, Any]]:
    lines = ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage={REPROCESS}/topic={TOPIC}/")
    return [line for line in lines if line["job_name"] == job_name]


def _through_the_dag(env: dict[str, str]) -> dict[str, Any]:
    """One k2f_reprocess run over the range, triggered through Airflow's REST API: its report's XCom."""
    with AirflowApi(f"http://127.0.0.1:{env['AIRFLOW_PORT']}") as airflow:
        config = local_config(env, [TOPIC], f"reprocess-dag-{RUN}")
        config["pipeline_options"] = {"source_id_system": SYSTEM, "archive_window_seconds": 5}
        with airflow.config(config):
            run_id = airflow.trigger("k2f_reprocess", RANGE)
            state = airflow.wait_for_run("k2f_reprocess", run_id, 900)
            assert state == "success", airflow.task_states("k2f_reprocess", run_id)
            report = airflow.xcom("k2f_reprocess", run_id, "report_reprocess")
            # run_reprocess's Rendered Template view: the job it started, under the name the wait and the
            # report were given.
            shown = airflow.rendered_fields("k2f_reprocess", run_id, "run_reprocess")
            assert shown["pipeline_options"]["job_name"] == report["job_name"], shown
            assert airflow.xcom("k2f_reprocess", run_id, "run_reprocess", key="job_name") == report["job_name"]
            return report


def _stored(env: dict[str, str]) -> list[Stored]:
    return stored(stored_resources(env, SYSTEM), SYSTEM)


def test_a_dry_run_writes_nothing_the_dag_writes_each_message_once_and_again_changes_nothing(env):
    rows, values = _archive(env)
    # A later message wrote the first Patient: the reprocess must leave it as it is.
    write_patients(env, rows[:LATER], SYSTEM, source_time_ms=int(time.time() * 1000))
    later = by_value(_stored(env))
    assert len(later) == LATER

    dry = _reprocess(env, f"reprocess-{RUN}-dry", "--dry_run")
    expected = {"objects_read": 3, "messages": MESSAGES, "would_write_messages": MESSAGES, "would_fail": CORRUPT}
    assert summary_problems(dry, expected) == [], dry
    assert fhir_count(env, SYSTEM) == LATER  # nothing written
    assert _error_records(env, f"reprocess-{RUN}-dry") == []  # nor any error record

    report = _through_the_dag(env)
    assert report["state"] == "DONE" and report["job_name"].startswith("kafka-to-fhir-reprocess-"), report
    expected = {
        "objects_read": 3,  # the day after the range was not read
        "messages": MESSAGES,
        "written": MESSAGES - LATER,
        "unchanged": 0,
        "superseded": LATER,
        "failed": CORRUPT,
    }
    assert summary_problems(report, expected) == [], report
    first = _stored(env)
    assert store_problems(first, values, did=CREATED, tag=mapping_tag(), left_alone=later) == []
    [record] = _error_records(env, report["job_name"])
    assert (record["code"], record["retryable"]) == (CORRUPT_ARCHIVE_LINE, False)
    assert "line 6 of " in record["detail"] and "field offset" in record["detail"]

    again = _reprocess(env, f"reprocess-{RUN}-again")
    assert summary_problems(again, {**expected, "written": 0, "unchanged": MESSAGES - LATER}) == [], again
    # Same source time, same content: the store made no new version of anything.
    assert (
        store_problems(_stored(env), values, did=UNCHANGED, tag=mapping_tag(), before=by_value(first), left_alone=later)
        == []
    )
    [same] = _error_records(env, f"reprocess-{RUN}-again")
    assert same["record_id"] == record["record_id"]  # the same line's record: the replay DAG takes it once


PROFILE_TOPIC = f"reprocess-profile-{RUN}"
PROFILE_MESSAGES = 20


def test_a_mapping_breaking_its_profile_gives_a_profile_violation_per_message_under_enforce(env, tmp_path):
    # The broken set's Patients lack the gender US Core requires; its folder is read in this process (LOOPBACK).
    # warn and off are the unit tests' (tests/unit/us_core/test_profile_validation.py).
    folder = write_broken_set(tmp_path / "mappings")
    rows = [json.dumps({"Id": f"v-{RUN}-{i}", "LAST": "Qzviolation"}).encode() for i in range(PROFILE_MESSAGES)]
    upload(
        env["GCS_ARCHIVE_BUCKET"],
        archive_objects(archived(PROFILE_TOPIC, rows, day_start_ms(DAY) + 7_200_000, 1000), 100, f"test-{RUN}"),
    )
    job = f"reprocess-{RUN}-enforce"
    enforce = _reprocess(env, job, f"--mappings={folder}", "--profile_validation=enforce", topic=PROFILE_TOPIC)
    assert enforce["state"].endswith("DONE"), enforce
    assert (enforce["messages"], enforce["written"]) == (PROFILE_MESSAGES, 0), enforce
    assert enforce["failed"] == {f"{VALIDATE}.{PROFILE_VIOLATION}": PROFILE_MESSAGES}, enforce
    lines = ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage={VALIDATE}/topic={PROFILE_TOPIC}/")
    records = [line for line in lines if line["job_name"] == job]
    assert len(records) == PROFILE_MESSAGES
    path, key = MISSING_GENDER
    for record in records:
        assert (record["code"], record["retryable"]) == (PROFILE_VIOLATION, False)
        assert f"us-core-patient: {path} ({key})" in record["detail"] and "Qz" not in record["detail"]
