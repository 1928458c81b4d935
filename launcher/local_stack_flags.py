"""Where the local runner stack is: the Beam options that send a pipeline to it.

The addresses come from the variables dev/env.sh exports (the one place that defines them), or from the
k2f Variable on the Airflow side; either way they become one LocalStack, whose options are a dict (what
Airflow's Beam operator takes) with a command-line form for PipelineOptions. Dataflow needs none of this:
its own flags go on the command line unchanged, and ReadFromKafka then uses Beam's default expansion service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RUNNER = "launcher.prism_runner.LocalPrismRunner"
# Beam's experiment that skips staging the submitting environment's `pip freeze`.
SKIP_SUBMISSION_FREEZE = "disable_logging_submission_environment"


def _require(env: Mapping[str, str], name: str) -> str:
    try:
        return env[name]
    except KeyError:
        raise KeyError(f"{name} is not set: source dev/env.sh (the local stack's settings)") from None


@dataclass(frozen=True)
class LocalStack:
    """The local stack's runner services: Prism's job service and the Python SDK worker pool."""

    job_endpoint: str
    worker_pool_port: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LocalStack:
        """From dev/env.sh's variables: pass `os.environ`, or the tests' `env` fixture."""
        return cls(_require(env, "PRISM_ENDPOINT"), _require(env, "PY_WORKER_POOL_PORT"))

    def runner_options(self, *, streaming: bool = False) -> dict[str, Any]:
        """Beam options for Prism's job service, with the pipeline's Python steps on the Python worker pool.

        The job runs detached: `Pipeline.run()` returns once Prism has accepted it, and a streaming job keeps
        running until it is cancelled through the job service. The Java steps' environment (the Java worker
        pool) is set by the expansion service, not here.
        """
        options: dict[str, Any] = {
            "runner": RUNNER,
            "job_endpoint": self.job_endpoint,
            "environment_type": "EXTERNAL",
            "environment_config": f"127.0.0.1:{self.worker_pool_port}",
            # The pool's workers run in the project's environment and install nothing, so a --requirements_file
            # (kept for Dataflow) is staged as is instead of `pip download`ing every package at each launch.
            "requirements_cache": "skip",
            # Nor can their packages differ from the submitter's: the `pip freeze` Beam runs at every launch
            # to report such a difference (about 0.6 s here) has nothing to report.
            "experiments": SKIP_SUBMISSION_FREEZE,
        }
        return {**options, "streaming": True} if streaming else options


def as_argv(options: Mapping[str, Any]) -> list[str]:
    """{"a": "b", "flag": True} -> ["--a=b", "--flag"]: Beam options in their command-line form."""
    return [f"--{name}" if value is True else f"--{name}={value}" for name, value in options.items()]


def local_runner_options(env: Mapping[str, str], *, streaming: bool = False) -> list[str]:
    """LocalStack.from_env(env)'s runner options as a command line, for PipelineOptions(...)."""
    return as_argv(LocalStack.from_env(env).runner_options(streaming=streaming))


def local_expansion_service(env: Mapping[str, str]) -> str:
    """The `expansion_service` argument of apache_beam.io.kafka.ReadFromKafka for the running local stack."""
    return f"127.0.0.1:{_require(env, 'EXPANSION_SERVICE_PORT')}"
