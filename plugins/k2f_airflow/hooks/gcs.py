"""Cloud Storage: the archive and error buckets.

An Airflow hook on the Google Cloud connection (`google_cloud_default` by default): on Google the client
comes from the provider's GCSHook with that connection's credentials; when STORAGE_EMULATOR_HOST is set
(the local stack) it talks to the emulator without credentials.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from airflow.sdk import BaseHook

from beam_pipeline.contracts.bucket_layout import bucket_name

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
PROBE_PREFIX = "_k2f_probe"


class BucketProblem(Exception):
    """A bucket is unusable; the message names the bucket and the fix, never object contents."""


class StorageHook(BaseHook):
    conn_name_attr = "gcp_conn_id"
    default_conn_name = "google_cloud_default"
    conn_type = "google_cloud_platform"
    hook_name = "kafka-to-fhir buckets"

    def __init__(self, gcp_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.gcp_conn_id = gcp_conn_id
        self._client: Any = None

    def get_conn(self) -> Any:
        """A google.cloud.storage.Client, built once."""
        if self._client is None:
            if os.environ.get(EMULATOR_ENV):
                from google.auth.credentials import AnonymousCredentials
                from google.cloud import storage

                self._client = storage.Client(project="local", credentials=AnonymousCredentials())
            else:
                from airflow.providers.google.cloud.hooks.gcs import GCSHook

                self._client = GCSHook(gcp_conn_id=self.gcp_conn_id).get_conn()
        return self._client

    def bucket(self, name: str) -> Any:
        return self.get_conn().bucket(bucket_name(name))

    def check_writable(self, name: str, role: str) -> None:
        """Write and delete a probe object; BucketProblem naming the fix when either fails."""
        from google.api_core import exceptions

        bucket = self.bucket(name)
        blob = bucket.blob(f"{PROBE_PREFIX}/{uuid.uuid4().hex}")
        try:
            blob.upload_from_string(b"", content_type="text/plain")
            blob.delete()
        except exceptions.NotFound:
            raise BucketProblem(
                f"the {role} bucket gs://{bucket.name} does not exist: create it "
                f"(gcloud storage buckets create gs://{bucket.name}) or fix the Variable naming it"
            ) from None
        except exceptions.Forbidden:
            raise BucketProblem(
                f"Airflow may not write to the {role} bucket gs://{bucket.name}: grant its service account "
                "roles/storage.objectAdmin on the bucket"
            ) from None
