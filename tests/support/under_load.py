"""Stopping and disturbing the streaming job under load, as an operator would: what the delivery tests and
the drain loop (tests/support/drain_loop.py) share.

The job is launched and drained through the Airflow DAGs (REST API, as the UI does); services are killed
with SIGKILL through their recorded pids and started again by their scripts, as `make up` would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from dev.airflow_api import AirflowApi
from dev.local_stack import ROOT, group_offsets, kafka_plain, ndjson_lines, wait_for
from launcher.job_service import JobServiceClient


class SteadyPublisher(threading.Thread):
    """Publishes `values` to `topic` at `per_second`, whatever happens to the job meanwhile."""

    def __init__(self, env: Mapping[str, str], topic: str, values: Sequence[bytes], per_second: float) -> None:
        super().__init__(daemon=True)
        self._producer = Producer({**kafka_plain(env), "linger.ms": 5})
        self._topic, self._values, self._interval = topic, values, 1.0 / per_second
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            start = time.monotonic()
            for i, value in enumerate(self._values):
                delay = start + i * self._interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self._producer.produce(self._topic, value=value)
                self._producer.poll(0)
                self.sent += 1
            # A broker restarting meanwhile: the producer's own retries carry the messages over it.
            assert self._producer.flush(120) == 0, "messages left unsent"
        except BaseException as exc:  # noqa: BLE001  (reported by finish())
            self.error = exc

    def finish(self, timeout: float = 180) -> int:
        self.join(timeout)
        assert not self.is_alive(), "the publisher did not finish"
        if self.error is not None:
            raise self.error
        return self.sent


def launch(airflow: AirflowApi, jobs: JobServiceClient, job_name: str, timeout: float = 600) -> str:
    """k2f_launch through the API; the job id once it runs."""
    run_id = airflow.trigger("k2f_launch")
    state = airflow.wait_for_run("k2f_launch", run_id, timeout)
    assert state == "success", airflow.task_states("k2f_launch", run_id)
    job_id = airflow.xcom("k2f_launch", run_id, "wait_until_running")["job_id"]
    assert jobs.state(job_id) == "RUNNING"
    return job_id


def drain(airflow: AirflowApi, timeout: float = 600) -> dict[str, Any]:
    """k2f_drain through the API; its last task's report (settled, left_behind, ...)."""
    run_id = airflow.trigger("k2f_drain")
    state = airflow.wait_for_run("k2f_drain", run_id, timeout)
    assert state == "success", airflow.task_states("k2f_drain", run_id)
    return airflow.xcom("k2f_drain", run_id, "report_drain")


def service(command: str, name: str) -> None:
    """dev/stack.sh up|down NAME (US Core validation stays on, as `make test` starts HAPI)."""
    env = {**os.environ, "HAPI_VALIDATE_US_CORE": "true"}
    subprocess.run(["bash", str(ROOT / "dev/stack.sh"), command, name], check=True, env=env, timeout=600, cwd=ROOT)


def leader_pid(env: Mapping[str, str], name: str) -> int:
    return int((Path(env["K2F_STATE_DIR"]) / "run" / f"{name}.pid").read_text())


def stack_processes(env: Mapping[str, str], group: int | None = None) -> list[tuple[int, str]]:
    """(pid, command line) of live processes the stack started (its K2F_STACK tag), of one group if given."""
    tag = f"K2F_STACK={env['K2F_STATE_DIR']}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if tag not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            pgid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[2])
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if group is None or pgid == group:
            found.append((int(entry), command))
    return found


def kill_leader(env: Mapping[str, str], name: str) -> int:
    """SIGKILL the service's leader process only, as a crash would: its children are left re-parented."""
    pid = leader_pid(env, name)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30, f"{name} to die")
    return pid


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def end_job(jobs: JobServiceClient, job_id: str, timeout: float = 120) -> None:
    """A job whose workers were killed may still show as running on Prism: end it (its offsets stand)."""
    try:
        if jobs.state(job_id) not in ("CANCELLED", "DONE", "FAILED"):
            jobs.cancel(job_id)
            jobs.wait_for(job_id, {"CANCELLED", "FAILED"}, timeout)
    except Exception:  # noqa: BLE001,S110  (a restarted Prism no longer knows the job: nothing to end)
        pass


def settled_everything(env: Mapping[str, str], group: str, topic: str) -> bool:
    return all(committed == end for committed, end in group_offsets(kafka_plain(env), group, [topic]).values())


def archive_lines(env: Mapping[str, str], topic: str) -> list[tuple[int, int]]:
    """(partition, offset) of every archive line of the topic, repeats included."""
    return [
        (line["partition"], line["offset"])
        for line in ndjson_lines(env["GCS_ARCHIVE_BUCKET"], f"archive/topic={topic}/")
    ]


def archived_offsets(env: Mapping[str, str], topic: str) -> set[tuple[int, int]]:
    return {
        (line["partition"], line["offset"])
        for line in ndjson_lines(env["GCS_ARCHIVE_BUCKET"], f"archive/topic={topic}/")
    }


def published_offsets(env: Mapping[str, str], group: str, topic: str) -> set[tuple[int, int]]:
    ends = group_offsets(kafka_plain(env), group, [topic])
    return {(p, o) for (_, p), (_, end) in ends.items() for o in range(end)}
