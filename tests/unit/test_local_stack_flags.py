"""The local stack's runner options: one dict, and the same options as a command line."""

from __future__ import annotations

import subprocess

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.stager import SUBMISSION_ENV_DEPENDENCIES_FILE, Stager

from launcher.local_stack_flags import LocalStack, local_runner_options

ENV = {"PRISM_ENDPOINT": "127.0.0.1:8073", "PY_WORKER_POOL_PORT": "50000"}


def test_the_command_line_says_what_the_options_say():
    assert local_runner_options(ENV, streaming=True) == [
        "--runner=launcher.prism_runner.LocalPrismRunner",
        "--job_endpoint=127.0.0.1:8073",
        "--environment_type=EXTERNAL",
        "--environment_config=127.0.0.1:50000",
        "--requirements_cache=skip",
        "--experiments=disable_logging_submission_environment",
        "--streaming",
    ]
    assert "streaming" not in LocalStack.from_env(ENV).runner_options()


def test_a_local_launch_stages_no_pip_freeze_of_the_submitter(monkeypatch, tmp_path):
    ran: list[list[str]] = []
    monkeypatch.setattr(subprocess, "check_output", lambda argv, *a, **k: ran.append(argv) or b"")
    Stager.create_job_resources(PipelineOptions(local_runner_options(ENV)), str(tmp_path))
    assert ran == [] and not (tmp_path / SUBMISSION_ENV_DEPENDENCIES_FILE).exists()
    # Without the experiment Beam runs it (what the test would miss if Beam renamed its experiment).
    Stager.create_job_resources(PipelineOptions([]), str(tmp_path))
    assert any("freeze" in argv for argv in ran)
