"""Start one Java SDK harness for the local Java worker pool: the Java SDK container's boot, without the container.

The pool (dev/beam/python_worker_pool.py serving dev/services/java_worker_pool.sh) runs this through
`java_sdk_boot` once per worker Prism asks for, with the container contract's flags. Like the Java
container's Go boot it asks the runner's provision service for the job's options and endpoints, then execs
`org.apache.beam.fn.harness.FnHarness` in a JVM of its own. Nothing is downloaded: the classpath (Beam's
Java SDK, KafkaIO, the Kafka ConfigProvider) is the one the pool's script built, in K2F_JAVA_HARNESS_ARGS.

One JVM per worker, not a harness thread in a shared JVM (Beam's ExternalWorkerService), because
stopping a worker must stop its Kafka consumers: ExternalWorkerService.stopWorker does nothing, so a
cancelled job's harness kept polling and, with the consumer's auto-commit, committed offsets of messages
published after the cancel that it never delivered; the restarted job then skipped them. The pool stops
this process when Prism stops the worker (on cancel), and its consumers with it.
"""

from __future__ import annotations

import os
import shutil
import sys

from python_sdk_boot import fn_api_environment, parse_flags, provision

HARNESS = "org.apache.beam.fn.harness.FnHarness"


def main(argv: list[str]) -> None:
    args = parse_flags(argv)
    info = provision(args)
    jvm_args = os.environ["K2F_JAVA_HARNESS_ARGS"].splitlines()
    java = shutil.which("java") or "java"
    env = {**os.environ, **fn_api_environment(info, args), "HARNESS_ID": args.id}
    os.execve(java, [java, *jvm_args, HARNESS], env)


if __name__ == "__main__":
    main(sys.argv[1:])
