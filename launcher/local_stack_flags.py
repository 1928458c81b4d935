"""Where the local runner stack is: the Beam options that send a pipeline to it.

The addresses come from the variables dev/env.sh exports (the one place that defines them); pass
`os.environ`, or the tests' `env` fixture. Dataflow needs none of this: its own flags go on the command
line unchanged, and ReadFromKafka then uses Beam's default expansion service.
"""

from __future__ import annotations

from collections.abc import Mapping


def _require(env: Mapping[str, str], name: str) -> str:
    try:
        return env[name]
    except KeyError:
        raise KeyError(f"{name} is not set: source dev/env.sh (the local stack's settings)") from None


def local_runner_options(env: Mapping[str, str], *, streaming: bool = False) -> list[str]:
    """Beam flags for Prism's job service, with the pipeline's Python steps on the Python worker pool.

    The job runs detached: `Pipeline.run()` returns once Prism has accepted it, and a streaming job keeps
    running until it is cancelled through the job service. The Java steps' environment (the Java worker
    pool) is set by the expansion service, not here.
    """
    options = [
        "--runner=launcher.prism_runner.LocalPrismRunner",
        f"--job_endpoint={_require(env, 'PRISM_ENDPOINT')}",
        "--environment_type=EXTERNAL",
        f"--environment_config=127.0.0.1:{_require(env, 'PY_WORKER_POOL_PORT')}",
        # The pool's workers run in the project's environment and install nothing, so a --requirements_file
        # (kept for Dataflow) is staged as is instead of `pip download`ing every package at each launch.
        "--requirements_cache=skip",
    ]
    return [*options, "--streaming"] if streaming else options


def local_expansion_service(env: Mapping[str, str]) -> str:
    """The `expansion_service` argument of apache_beam.io.kafka.ReadFromKafka for the running local stack."""
    return f"127.0.0.1:{_require(env, 'EXPANSION_SERVICE_PORT')}"
