"""The GCS emulator is real enough for google-cloud-storage: buckets exist, objects write and list."""

from __future__ import annotations

import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

pytestmark = pytest.mark.integration


@pytest.fixture
def client(env):
    # STORAGE_EMULATOR_HOST (set by conftest from dev/env.sh) points the client at the emulator.
    return storage.Client(project=env["GCP_PROJECT"], credentials=AnonymousCredentials())


def test_archive_and_error_buckets_exist(client, env):
    names = {b.name for b in client.list_buckets()}
    assert {env["GCS_ARCHIVE_BUCKET"], env["GCS_ERROR_BUCKET"]} <= names


def test_write_read_and_list_an_object(client, env):
    prefix = f"smoke/{uuid.uuid4().hex}/"
    bucket = client.bucket(env["GCS_ARCHIVE_BUCKET"])
    bucket.blob(prefix + "a.ndjson").upload_from_string('{"n": 1}\n', content_type="application/x-ndjson")
    bucket.blob(prefix + "b.ndjson").upload_from_string('{"n": 2}\n')
    listed = [b.name for b in client.list_blobs(bucket, prefix=prefix)]
    assert listed == [prefix + "a.ndjson", prefix + "b.ndjson"]
    assert bucket.blob(prefix + "a.ndjson").download_as_text() == '{"n": 1}\n'
    assert list(client.list_blobs(bucket, prefix=prefix + "missing")) == []
