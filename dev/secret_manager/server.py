"""A local stand-in for Google Secret Manager, speaking its real gRPC API.

Google ships no Secret Manager emulator. This server answers the v1 SecretManagerService methods the
project uses (AccessSecretVersion, GetSecret, and CreateSecret / AddSecretVersion so the stack can seed
itself through the real client) with the official generated protobuf messages from
google-cloud-secret-manager, so the unmodified client library is what talks to it. State is one JSON
file, written atomically and readable by its owner only, so secrets survive restarts.

With --rest_port it also answers the REST API's AccessSecretVersion (GET /v1/{name}:access, JSON as
Google's), which the Kafka ConfigProvider of java/kafka-config-provider calls from the Java workers.
Both listen on --host, 127.0.0.1 by default.

Run: python dev/secret_manager/server.py --port 8095 --rest_port 8096 --state .stack/data/secret_manager/secrets.json
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from concurrent import futures
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import google_crc32c
import grpc
from google.cloud.secretmanager_v1.types import resources, service

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
log = logging.getLogger("secret-manager-standin")


class SecretStore:
    """Secrets and their versions in a JSON file: {secret_name: {"created": iso, "versions": {n: b64}}}."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600, and the rename keeps it: the secrets stay private.
        fd, tmp = tempfile.mkstemp(dir=self._path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(self._data, f, indent=1, sort_keys=True)
        os.replace(tmp, self._path)

    def create_secret(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name in self._data:
                raise KeyError("exists")
            self._data[name] = {"created": datetime.now(UTC).isoformat(), "versions": {}}
            self._save()
            return self._data[name]

    def get_secret(self, name: str) -> dict[str, Any] | None:
        return self._data.get(name)

    def add_version(self, secret: str, payload: bytes) -> str:
        with self._lock:
            versions = self._data[secret]["versions"]
            number = str(len(versions) + 1)
            versions[number] = base64.b64encode(payload).decode()
            self._save()
            return number

    def access(self, version_name: str) -> tuple[str, bytes] | None:
        secret, _, version = version_name.partition("/versions/")
        versions = self._data.get(secret, {}).get("versions", {})
        if version == "latest" and versions:
            version = max(versions, key=int)
        if version not in versions:
            return None
        return f"{secret}/versions/{version}", base64.b64decode(versions[version])


def _secret_message(name: str, entry: dict[str, Any]) -> Any:
    msg = resources.Secret.pb()(name=name)
    msg.create_time.FromDatetime(datetime.fromisoformat(entry["created"]))
    msg.replication.automatic.SetInParent()
    return msg


class SecretManagerStandIn:
    """The RPC handlers; each aborts with the status code the real service uses."""

    def __init__(self, store: SecretStore) -> None:
        self.store = store

    def access_secret_version(self, request: Any, context: grpc.ServicerContext) -> Any:
        found = self.store.access(request.name)
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{request.name}] not found.")
        name, data = found
        response = service.AccessSecretVersionResponse.pb()(name=name)
        response.payload.data = data
        response.payload.data_crc32c = google_crc32c.value(data)
        return response

    def get_secret(self, request: Any, context: grpc.ServicerContext) -> Any:
        entry = self.store.get_secret(request.name)
        if entry is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found.")
        return _secret_message(request.name, entry)

    def create_secret(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = f"{request.parent}/secrets/{request.secret_id}"
        try:
            entry = self.store.create_secret(name)
        except KeyError:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
        return _secret_message(name, entry)

    def add_secret_version(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self.store.get_secret(request.parent) is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.parent}] not found.")
        number = self.store.add_version(request.parent, request.payload.data)
        version = resources.SecretVersion.pb()(name=f"{request.parent}/versions/{number}")
        version.state = resources.SecretVersion.State.ENABLED
        version.create_time.GetCurrentTime()
        return version


def _unary(fn: Callable[..., Any], request_type: Any, response_type: Any) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=request_type.FromString, response_serializer=response_type.SerializeToString
    )


def build_server(store: SecretStore, address: str) -> grpc.Server:
    handlers = SecretManagerStandIn(store)
    methods = {
        "AccessSecretVersion": _unary(
            handlers.access_secret_version,
            service.AccessSecretVersionRequest.pb(),
            service.AccessSecretVersionResponse.pb(),
        ),
        "GetSecret": _unary(handlers.get_secret, service.GetSecretRequest.pb(), resources.Secret.pb()),
        "CreateSecret": _unary(handlers.create_secret, service.CreateSecretRequest.pb(), resources.Secret.pb()),
        "AddSecretVersion": _unary(
            handlers.add_secret_version, service.AddSecretVersionRequest.pb(), resources.SecretVersion.pb()
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
    server.add_insecure_port(address)
    return server


def access_response_json(found: tuple[str, bytes]) -> dict[str, Any]:
    """The REST API's AccessSecretVersionResponse for a found version."""
    name, data = found
    payload = {"data": base64.b64encode(data).decode(), "dataCrc32c": str(google_crc32c.value(data))}
    return {"name": name, "payload": payload}


def build_rest_server(store: SecretStore, host: str, port: int) -> ThreadingHTTPServer:
    """GET /v1/projects/P/secrets/S/versions/V:access, answered as the REST API does (errors included)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
            path = self.path.split("?", 1)[0]
            name = path.removeprefix("/v1/").removesuffix(":access")
            found = store.access(name) if path.startswith("/v1/") and path.endswith(":access") else None
            if found is None:
                error = {"code": 404, "message": f"Secret Version [{name}] not found.", "status": "NOT_FOUND"}
                self._send(HTTPStatus.NOT_FOUND, {"error": error})
            else:
                self._send(HTTPStatus.OK, access_response_json(found))

        def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass  # request lines name secrets; the log names the address only

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8095, help="gRPC port (default 8095)")
    parser.add_argument("--rest_port", type=int, help="also serve the REST AccessSecretVersion on this port")
    parser.add_argument("--state", type=Path, required=True, help="JSON file holding the secrets")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = SecretStore(args.state)
    server = build_server(store, f"{args.host}:{args.port}")
    server.start()
    if args.rest_port:
        rest = build_rest_server(store, args.host, args.rest_port)
        threading.Thread(target=rest.serve_forever, name="rest", daemon=True).start()
        log.info("Secret Manager stand-in serving REST on %s:%d", args.host, args.rest_port)
    # Log the address only: secret names and payloads stay out of the log.
    log.info("Secret Manager stand-in serving on %s:%d", args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(grace=2))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
