"""The local stack's runner options: one dict, and the same options as a command line."""

from __future__ import annotations

from launcher.local_stack_flags import LocalStack, local_runner_options

ENV = {"PRISM_ENDPOINT": "127.0.0.1:8073", "PY_WORKER_POOL_PORT": "50000"}


def test_the_command_line_says_what_the_options_say():
    assert local_runner_options(ENV, streaming=True) == [
        "--runner=launcher.prism_runner.LocalPrismRunner",
        "--job_endpoint=127.0.0.1:8073",
        "--environment_type=EXTERNAL",
        "--environment_config=127.0.0.1:50000",
        "--requirements_cache=skip",
        "--streaming",
    ]
    assert "streaming" not in LocalStack.from_env(ENV).runner_options()
