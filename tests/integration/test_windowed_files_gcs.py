"""ArchiveRaw writes windowed NDJSON objects to the GCS emulator: grouped, partitioned, each message once,
and never over another writer's object."""

from __future__ import annotations

import json
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import TimestampedValue
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.archive import ArchiveRaw
from beam_pipeline.transforms.windowed_files import create_object

pytestmark = pytest.mark.integration

T0_MS = 1_795_000_000_000  # 2026-11-18, a fixed instant so the date partition is known


def _client(env):
    return storage.Client(project=env["GCP_PROJECT"], credentials=AnonymousCredentials())


def test_archive_groups_messages_per_window_partition_and_shard(env):
    topic = f"archive-test-{uuid.uuid4().hex[:8]}"
    messages = [RawMessage(topic, 0, i, T0_MS + i * 1000, b"k", f'{{"Id": "{i}"}}'.encode()) for i in range(40)] + [
        RawMessage(topic, 1, 0, T0_MS + 500, None, b"\xff not utf-8")
    ]

    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        _ = (
            p
            | beam.Create(messages)
            | beam.Map(lambda m: TimestampedValue(m, m.timestamp_ms / 1000))
            | ArchiveRaw(env["GCS_ARCHIVE_BUCKET"], window_seconds=20)
        )

    prefix = f"archive/topic={topic}/date=2026-11-18/"
    blobs = list(_client(env).list_blobs(env["GCS_ARCHIVE_BUCKET"], prefix=prefix))
    # 41 messages over 40 s in 20 s windows, 2 shards: a handful of objects, not one per message.
    assert 2 <= len(blobs) <= 6
    lines = [json.loads(line) for b in blobs for line in b.download_as_text().splitlines()]
    assert sorted((r["partition"], r["offset"]) for r in lines) == sorted((m.partition, m.offset) for m in messages)
    by_offset = {(r["partition"], r["offset"]): r for r in lines}
    assert by_offset[(0, 7)]["payload"] == '{"Id": "7"}' and by_offset[(0, 7)]["key"] == "k"
    assert "payload_base64" in by_offset[(1, 0)]


def _archive(env, messages, job_name):
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        _ = (
            p
            | beam.Create(messages)
            | beam.Map(lambda m: TimestampedValue(m, m.timestamp_ms / 1000))
            | ArchiveRaw(env["GCS_ARCHIVE_BUCKET"], window_seconds=60, job_name=job_name)
        )


def test_two_jobs_or_a_job_and_its_restart_writing_one_window_keep_every_line(env):
    topic = f"archive-clash-{uuid.uuid4().hex[:8]}"
    first = [RawMessage(topic, 0, i, T0_MS + i, None, f'{{"Id": "a{i}"}}'.encode()) for i in range(20)]
    restart = [RawMessage(topic, 0, i, T0_MS + i, None, f'{{"Id": "b{i}"}}'.encode()) for i in range(20, 40)]
    other_job = [RawMessage(topic, 1, i, T0_MS + i, None, f'{{"Id": "c{i}"}}'.encode()) for i in range(20)]
    # The same window, pane and shards each time: only the writer's name tells the objects apart.
    _archive(env, first, "kafka-to-fhir")
    _archive(env, restart, "kafka-to-fhir")
    _archive(env, other_job, "kafka-to-fhir-2")

    blobs = list(_client(env).list_blobs(env["GCS_ARCHIVE_BUCKET"], prefix=f"archive/topic={topic}/"))
    lines = [json.loads(line) for b in blobs for line in b.download_as_text().splitlines()]
    expected = first + restart + other_job
    assert sorted((r["partition"], r["offset"]) for r in lines) == sorted((m.partition, m.offset) for m in expected)
    assert any("-kafka-to-fhir-2-" in b.name for b in blobs)


def test_create_object_never_replaces_an_object(env):
    bucket = _client(env).bucket(env["GCS_ARCHIVE_BUCKET"])
    name = f"archive/create-only-{uuid.uuid4().hex[:8]}/w-pane000-shard00-job-1.ndjson"
    assert create_object(bucket, name, b"one\n") == name
    # A retried bundle uploads the same bytes under the same name: already written, no second object.
    assert create_object(bucket, name, b"one\n") == name
    # Other bytes under a taken name (a second launch from one template): a new object beside it.
    other = create_object(bucket, name, b"two\n")
    assert other != name and other.startswith(name.removesuffix(".ndjson"))
    blobs = {b.name: b.download_as_bytes() for b in bucket.list_blobs(prefix=name.rsplit("/", 1)[0] + "/")}
    assert blobs == {name: b"one\n", other: b"two\n"}
