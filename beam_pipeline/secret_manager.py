"""Reading secrets from Google Secret Manager: the Kafka connection (launcher, Airflow) and the FHIR auth
credentials (the write step on workers).

In production the client talks to Google with Application Default Credentials. When the environment
variable SECRET_MANAGER_ENDPOINT is set (host:port), it talks plaintext gRPC to that address instead:
that is how the local stack's stand-in is reached, the same way STORAGE_EMULATOR_HOST redirects
google-cloud-storage to its emulator.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import secretmanager_v1

ENDPOINT_ENV = "SECRET_MANAGER_ENDPOINT"


def secret_manager_client(endpoint: str | None = None) -> secretmanager_v1.SecretManagerServiceClient:
    """A Secret Manager client: Google's service, or the stand-in at `endpoint` / $SECRET_MANAGER_ENDPOINT."""
    # Imported here, where a secret is read: the steps that take `access_secret` as their default reader
    # are imported by the launcher, DAG parsing and tests that never read one.
    from google.cloud import secretmanager_v1

    endpoint = endpoint or os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        return secretmanager_v1.SecretManagerServiceClient()
    import grpc  # only the local path needs a hand-made channel
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    transport = SecretManagerServiceGrpcTransport(
        channel=grpc.insecure_channel(endpoint), credentials=AnonymousCredentials()
    )
    return secretmanager_v1.SecretManagerServiceClient(transport=transport)


def access_secret(resource_name: str, client: secretmanager_v1.SecretManagerServiceClient | None = None) -> bytes:
    """The payload of `projects/P/secrets/S/versions/V`."""
    client = client or secret_manager_client()
    return client.access_secret_version(name=resource_name).payload.data
