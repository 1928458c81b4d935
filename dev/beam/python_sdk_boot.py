"""Start one Python SDK harness for the local worker pool: the SDK container's boot, without the container.

`worker_pool_main` runs this (through `python_sdk_boot`) once per worker Prism asks for, with the flags of
the container contract (--id, --provision_endpoint, --control_endpoint, --logging_endpoint,
--artifact_endpoint). Like the container's Go boot it asks the runner's provision service for the job's
pipeline options and endpoints, then execs `sdk_worker_main`, so the worker honours the job's options
(pickler, log level, state cache, --save_main_session) and sends its logs to the runner.

Unlike the container's boot it installs nothing: the worker runs in the pool's own environment (the
project's virtual environment, which already holds requirements.txt). Of the staged artifacts it fetches
only the pickled main session; staged requirements, extra packages and setup.py are ignored, which is the
point for a shared local environment.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import grpc
from apache_beam.portability import common_urns
from apache_beam.portability.api import (
    beam_artifact_api_pb2,
    beam_artifact_api_pb2_grpc,
    beam_provision_api_pb2,
    beam_provision_api_pb2_grpc,
    beam_runner_api_pb2,
    endpoints_pb2,
)
from apache_beam.runners.internal import names
from google.protobuf import json_format, text_format


def _descriptor(url: str) -> str:
    return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))


def _staged_name(dep: beam_runner_api_pb2.ArtifactInformation) -> str | None:
    if dep.role_urn != common_urns.artifact_roles.STAGING_TO.urn:
        return None
    payload = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dep.role_payload)
    return os.path.basename(payload.staged_name)


def _fetch_main_session(
    info: beam_provision_api_pb2.ProvisionInfo, artifact_url: str, metadata: list[tuple[str, str]], staged: Path
) -> None:
    wanted = [d for d in info.dependencies if _staged_name(d) == names.PICKLED_MAIN_SESSION_FILE]
    if not wanted:
        return
    with grpc.insecure_channel(artifact_url) as channel:
        stub = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(channel)
        staged.mkdir(parents=True, exist_ok=True)
        with open(staged / names.PICKLED_MAIN_SESSION_FILE, "wb") as out:
            for chunk in stub.GetArtifact(
                beam_artifact_api_pb2.GetArtifactRequest(artifact=wanted[0]), metadata=metadata
            ):
                out.write(chunk.data)


def parse_flags(argv: list[str]) -> argparse.Namespace:
    """The container contract's flags, as the worker pool passes them."""
    parser = argparse.ArgumentParser()
    for flag in ("id", "provision_endpoint", "control_endpoint", "logging_endpoint", "artifact_endpoint"):
        parser.add_argument(f"--{flag}", default="")
    args, _ = parser.parse_known_args(argv)
    return args


def worker_metadata(args: argparse.Namespace) -> list[tuple[str, str]]:
    # The runner tells its workers apart by this header, as the Go boot's grpcx.WriteWorkerID sends it.
    return [("worker_id", args.id)]


def provision(args: argparse.Namespace) -> beam_provision_api_pb2.ProvisionInfo:
    """The job's options and endpoints, from the runner's provision service."""
    with grpc.insecure_channel(args.provision_endpoint) as channel:
        return (
            beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
            .GetProvisionInfo(
                beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=worker_metadata(args), timeout=60
            )
            .info
        )


def fn_api_environment(info: beam_provision_api_pb2.ProvisionInfo, args: argparse.Namespace) -> dict[str, str]:
    """What every SDK harness (Python's sdk_worker_main, Java's FnHarness) reads from its environment."""
    env = {
        "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
        "CONTROL_API_SERVICE_DESCRIPTOR": _descriptor(info.control_endpoint.url or args.control_endpoint),
        "LOGGING_API_SERVICE_DESCRIPTOR": _descriptor(info.logging_endpoint.url or args.logging_endpoint),
        "RUNNER_CAPABILITIES": " ".join(info.runner_capabilities),
    }
    if info.status_endpoint.url:
        env["STATUS_API_SERVICE_DESCRIPTOR"] = _descriptor(info.status_endpoint.url)
    for key, var in (("job_name", "JOB_NAME"), ("job_id", "JOB_ID")):
        if key in info.metadata:
            env[var] = info.metadata[key]
    return env


def main(argv: list[str]) -> None:
    args = parse_flags(argv)
    info = provision(args)

    # One directory per worker, so workers of one pool never share a staging folder; the pool's script
    # names the parent (inside .stack/) and empties it when the pool starts.
    semi_persistent = Path(tempfile.mkdtemp(prefix="worker-", dir=os.environ.get("K2F_WORKER_DIR")))
    _fetch_main_session(
        info, info.artifact_endpoint.url or args.artifact_endpoint, worker_metadata(args), semi_persistent / "staged"
    )

    env = {
        **fn_api_environment(info, args),
        "WORKER_ID": args.id,
        "SEMI_PERSISTENT_DIRECTORY": str(semi_persistent),
    }
    # A fresh interpreter, as the Go boot starts one: Beam reads WORKER_ID from the environment at import.
    harness = [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"]
    os.execve(sys.executable, harness, {**os.environ, **env})


if __name__ == "__main__":
    main(sys.argv[1:])
