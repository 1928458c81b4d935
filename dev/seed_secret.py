"""Create the local Kafka connection secret in the Secret Manager stand-in, through the real client.

The secret names the SASL_PLAINTEXT listener with the local PLAIN user, so local runs exercise the same
apiKey/apiSecret path as Confluent Cloud. Idempotent: an existing secret with the same payload is kept.
"""

from __future__ import annotations

import json
import os
import sys

from google.api_core import exceptions

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from beam_pipeline.secret_manager import secret_manager_client  # noqa: E402


def main() -> None:
    project = os.environ["GCP_PROJECT"]
    secret_id = os.environ["KAFKA_SECRET_ID"]
    payload = json.dumps(
        {
            "bootstrap_servers": os.environ["KAFKA_SASL_BOOTSTRAP"],
            "apiKey": os.environ["KAFKA_SASL_USER"],
            "apiSecret": os.environ["KAFKA_SASL_PASSWORD"],
            "security_protocol": "SASL_PLAINTEXT",
        }
    ).encode()
    client = secret_manager_client()
    name = f"projects/{project}/secrets/{secret_id}"
    try:
        client.create_secret(parent=f"projects/{project}", secret_id=secret_id, secret={})
    except exceptions.AlreadyExists:
        try:
            if client.access_secret_version(name=f"{name}/versions/latest").payload.data == payload:
                return
        except exceptions.NotFound:
            pass
    client.add_secret_version(parent=name, payload={"data": payload})
    print(f"seeded {name}/versions/latest", file=sys.stderr)


if __name__ == "__main__":
    main()
