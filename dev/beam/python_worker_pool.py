"""The Python SDK worker pool of the local runner, listening on 127.0.0.1 only.

Beam's own entry point (apache_beam.runners.worker.worker_pool_main) binds `[::]:PORT`, every interface,
and has no flag to change it: anyone on the network could then ask it to start processes. This launcher
serves the same servicer (BeamFnExternalWorkerPoolServicer, one process per worker through the
--container_executable) on a loopback address instead.

Run: python dev/beam/python_worker_pool.py --port 50000 --container_executable dev/beam/python_sdk_boot
"""

from __future__ import annotations

import argparse
import atexit
import logging

import grpc
from apache_beam.portability.api import beam_fn_api_pb2_grpc
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer, kill_process_gracefully
from apache_beam.utils import thread_pool_executor

LOOPBACK = "127.0.0.1"
log = logging.getLogger("python_worker_pool")


def serve(port: int, container_executable: str, host: str = LOOPBACK) -> grpc.Server:
    """Start the pool's gRPC server on host:port; raise when the address cannot be bound."""
    # The same server options as worker_pool_main: workers hold long-lived idle streams.
    server = grpc.server(
        thread_pool_executor.shared_unbounded_instance(),
        options=[("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)],
    )
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"could not bind {host}:{port}")
    pool = BeamFnExternalWorkerPoolServicer(use_process=True, container_executable=container_executable)
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    server.start()
    # As worker_pool_main does: workers still running when the pool exits are stopped with it.
    atexit.register(lambda: [kill_process_gracefully(p) for p in list(pool._worker_processes.values())])  # noqa: SLF001
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=LOOPBACK, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port of the worker pool service")
    parser.add_argument("--container_executable", required=True, help="the SDK container contract's boot")
    args = parser.parse_args()
    server = serve(args.port, args.container_executable, args.host)
    # worker_pool_main's level: INFO records pass, but with no handler only WARNING and above print.
    logging.getLogger().setLevel(logging.INFO)
    log.warning("Python worker pool listening on %s:%d", args.host, args.port)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
