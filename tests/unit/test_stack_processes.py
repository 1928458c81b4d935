"""Nothing the local stack started outlives `make down`, even when a service's leader died first.

A throwaway state directory stands for the stack (the tag every process of a stack carries names it), so
the real stack, if one runs, is never touched: its processes carry another tag.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.under_load import stack_processes

ROOT = Path(__file__).resolve().parents[2]


def _bash(state: Path, script: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "K2F_STATE_DIR": str(state)}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def _tagged(state: Path) -> list[tuple[int, str]]:
    # A killed, unreaped leader (a zombie) has no environment left to carry the tag, so it is not listed.
    return stack_processes({"K2F_STATE_DIR": str(state)})


def test_a_worker_left_by_a_killed_pool_is_listed_and_stopped_by_down(tmp_path):
    state = tmp_path / "stack"
    # A "worker pool" whose worker outlives it, as a Beam SDK harness does when its pool is SIGKILLed.
    started = _bash(
        state,
        "source dev/lib.sh && start_bg java_worker_pool bash -c 'sleep 300 & wait' && sleep 0.5 "
        '&& cat "$K2F_RUN_DIR/java_worker_pool.pid"',
    )
    assert started.returncode == 0, started.stderr
    leader = int(started.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 10
    while len(_tagged(state)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_tagged(state)) >= 2
    os.kill(leader, signal.SIGKILL)
    time.sleep(0.5)
    assert _tagged(state), "the worker should have outlived its pool"

    status = _bash(state, "bash dev/stack.sh status java_worker_pool")
    assert "stray: pid" in status.stdout, status.stdout + status.stderr

    down = _bash(state, "bash dev/stack.sh down")
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 10
    while _tagged(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _tagged(state) == [], "a process of the stack outlived make down"
