"""The Secret Manager stand-in answers the real google-cloud-secret-manager client."""

from __future__ import annotations

import json
import uuid

import pytest
from google.api_core import exceptions

from beam_pipeline.secret_manager import access_secret, secret_manager_client

pytestmark = pytest.mark.integration


def test_seeded_kafka_secret_has_the_original_shape(env):
    name = f"projects/{env['GCP_PROJECT']}/secrets/{env['KAFKA_SECRET_ID']}/versions/latest"
    secret = json.loads(access_secret(name))
    assert secret["bootstrap_servers"] == env["KAFKA_SASL_BOOTSTRAP"]
    assert secret["apiKey"] == env["KAFKA_SASL_USER"]
    assert secret["apiSecret"] == env["KAFKA_SASL_PASSWORD"]


def test_versions_get_secret_and_not_found(env):
    client = secret_manager_client()
    parent = f"projects/{env['GCP_PROJECT']}"
    secret_id = f"smoke-{uuid.uuid4().hex[:8]}"
    created = client.create_secret(parent=parent, secret_id=secret_id, secret={})
    assert created.name == f"{parent}/secrets/{secret_id}"
    v1 = client.add_secret_version(parent=created.name, payload={"data": b"one"})
    client.add_secret_version(parent=created.name, payload={"data": b"two"})
    assert v1.name.endswith("/versions/1")
    assert client.access_secret_version(name=f"{created.name}/versions/1").payload.data == b"one"
    latest = client.access_secret_version(name=f"{created.name}/versions/latest")
    assert (latest.name, latest.payload.data) == (f"{created.name}/versions/2", b"two")
    assert client.get_secret(name=created.name).name == created.name
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"{parent}/secrets/absent-{secret_id}/versions/1")
    with pytest.raises(exceptions.AlreadyExists):
        client.create_secret(parent=parent, secret_id=secret_id, secret={})
