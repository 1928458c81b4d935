"""Reprocess end to end on the local stack: an archive in the GCS emulator, in the archive line format with a
corrupt line among them, reprocessed by `python -m beam_pipeline.reprocess` in batch on Prism into HAPI;
then the same again, which changes nothing. And a mapping set whose Patients break US Core: each message an
error record validate/profile_violation under --profile_validation=enforce, none under warn.

The job's Python steps run in the test's own process (LOOPBACK), so it checks this checkout's code whichever
checkout started the stack's worker pool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.cloud import storage

from beam_pipeline.contracts.outcome import CORRUPT_ARCHIVE_LINE, PROFILE_VIOLATION, REPROCESS, VALIDATE
from beam_pipeline.raw_message import RawMessage
from dev.local_stack import ROOT, fhir_count, ndjson_lines
from launcher.local_stack_flags import LocalStack, as_argv
from tests.support.broken_mapping import MISSING_GENDER, write_broken_set

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
TOPIC = f"reprocess-{RUN}"
SYSTEM = f"urn:k2f-reprocess:{RUN}"
MESSAGES = 300
OBJECTS = 3
# Yesterday, so the range is a whole UTC day in the past, as a reprocess's is.
DAY = (datetime.now(UTC) - timedelta(days=1)).date()


def _at(hours: float) -> int:
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    return int((start + timedelta(hours=hours)).timestamp() * 1000)


def _archive(env: dict[str, str]) -> None:
    """MESSAGES Patients in OBJECTS objects, one corrupt line, and one message of the day after the range."""
    messages = [
        RawMessage(
            TOPIC,
            i % 2,
            i,
            _at(1 + i / 1000),
            f"k{i}".encode(),
            json.dumps({"Id": f"r-{i}", "FIRST": "Ann", "LAST": f"Reprocess{i}", "COUNTRY": "US"}).encode(),
        )
        for i in range(MESSAGES)
    ]
    bucket = storage.Client(project="k2f-local").bucket(env["GCS_ARCHIVE_BUCKET"])
    prefix = f"archive/topic={TOPIC}/date={DAY.isoformat()}"
    for k in range(OBJECTS):
        lines = [m.archive_line() for m in messages[k::OBJECTS]]
        if k == 0:
            lines.insert(5, '{"topic": "' + TOPIC + '", "partition": 0, "offset": "not-a-number", "payload": "x"}')
        body = "".join(line + "\n" for line in lines)
        bucket.blob(f"{prefix}/test-{RUN}-{k}.ndjson").upload_from_string(body)
    late = RawMessage(TOPIC, 0, 10_000, _at(25), None, b'{"Id": "late", "FIRST": "A", "LAST": "B", "COUNTRY": "US"}')
    next_day = (DAY + timedelta(days=1)).isoformat()
    bucket.blob(f"archive/topic={TOPIC}/date={next_day}/test-{RUN}.ndjson").upload_from_string(late.archive_line())


def _loopback_options(env: dict[str, str]) -> list[str]:
    """The local stack's runner options with the Python steps in this process instead of the worker pool."""
    options = LocalStack.from_env(env).runner_options()
    options.pop("environment_config")
    return as_argv({**options, "environment_type": "LOOPBACK"})


def _reprocess(env: dict[str, str], job_name: str, topic: str = TOPIC, *flags: str) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "beam_pipeline.reprocess",
        *_loopback_options(env),
        *flags,
        f"--job_name={job_name}",
        f"--topics={topic}",
        f"--from={DAY.isoformat()}",
        f"--to={(DAY + timedelta(days=1)).isoformat()}",
        f"--gcs_archive_bucket={env['GCS_ARCHIVE_BUCKET']}",
        f"--gcs_error_bucket={env['GCS_ERROR_BUCKET']}",
        f"--fhir_base_url={env['FHIR_BASE_URL']}",
        f"--source_id_system={SYSTEM}",
        "--archive_window_seconds=5",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _versions(env: dict[str, str]) -> dict[str, str]:
    """identifier value -> meta.versionId of every Patient of this run."""
    response = httpx.get(
        f"{env['FHIR_BASE_URL']}/Patient",
        params={"identifier": f"{SYSTEM}|", "_count": MESSAGES + 10, "_elements": "identifier,meta"},
        headers={"Cache-Control": "no-cache"},
        timeout=60,
    )
    response.raise_for_status()
    out = {}
    for entry in response.json().get("entry", []):
        resource = entry["resource"]
        value = next(i["value"] for i in resource["identifier"] if i.get("system") == SYSTEM)
        out[value] = resource["meta"]["versionId"]
    return out


def _error_records(env: dict[str, str], job_name: str) -> list[dict[str, Any]]:
    lines = ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage={REPROCESS}/topic={TOPIC}/")
    return [line for line in lines if line["job_name"] == job_name]


def test_a_reprocess_writes_each_archived_message_once_and_a_second_changes_nothing(env):
    _archive(env)

    first = _reprocess(env, f"reprocess-{RUN}-1")
    assert first["state"].endswith("DONE"), first
    assert (first["objects_read"], first["messages"], first["written"]) == (OBJECTS, MESSAGES, MESSAGES), first
    assert first["failed"] == {f"{REPROCESS}.{CORRUPT_ARCHIVE_LINE}": 1}, first
    assert fhir_count(env, SYSTEM) == MESSAGES  # the day after the range was not read
    [record] = _error_records(env, f"reprocess-{RUN}-1")
    assert (record["code"], record["retryable"]) == (CORRUPT_ARCHIVE_LINE, False)
    assert "line 6 of " in record["detail"] and "field offset" in record["detail"]
    versions = _versions(env)
    assert len(versions) == MESSAGES

    second = _reprocess(env, f"reprocess-{RUN}-2")
    assert (second["messages"], second["written"], second["failed"]) == (MESSAGES, MESSAGES, first["failed"]), second
    assert fhir_count(env, SYSTEM) == MESSAGES
    assert _versions(env) == versions  # same source time, same content: the store changed nothing
    [again] = _error_records(env, f"reprocess-{RUN}-2")
    assert again["record_id"] == record["record_id"]  # the same line's record: the replay DAG takes it once


PROFILE_TOPIC = f"reprocess-profile-{RUN}"
PROFILE_MESSAGES = 20


def test_a_mapping_breaking_its_profile_gives_profile_violations_under_enforce_and_none_under_warn(env, tmp_path):
    # The broken set's Patients lack the gender US Core requires; its folder is read in this process (LOOPBACK).
    folder = write_broken_set(tmp_path / "mappings")
    messages = [
        RawMessage(PROFILE_TOPIC, 0, i, _at(2), None, json.dumps({"Id": f"v-{i}", "LAST": "Qzviolation"}).encode())
        for i in range(PROFILE_MESSAGES)
    ]
    bucket = storage.Client(project="k2f-local").bucket(env["GCS_ARCHIVE_BUCKET"])
    body = "".join(m.archive_line() + "\n" for m in messages)
    bucket.blob(f"archive/topic={PROFILE_TOPIC}/date={DAY.isoformat()}/test-{RUN}.ndjson").upload_from_string(body)
    mappings = f"--mappings={folder}"

    job = f"reprocess-{RUN}-enforce"
    enforce = _reprocess(env, job, PROFILE_TOPIC, mappings, "--profile_validation=enforce")
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

    warn = _reprocess(env, f"reprocess-{RUN}-warn", PROFILE_TOPIC, mappings, "--profile_validation=warn")
    assert warn["state"].endswith("DONE") and warn["messages"] == PROFILE_MESSAGES, warn
    # Written, or refused by a store that validates (write/...): never a profile_violation.
    assert f"{VALIDATE}.{PROFILE_VIOLATION}" not in warn["failed"], warn
