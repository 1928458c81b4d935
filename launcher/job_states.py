"""A job as the runners report it (Beam's job states), for the Airflow hooks of either runner.

No Beam import: the Dataflow hook answers in these terms without loading the local job service client.
"""

from __future__ import annotations

from dataclasses import dataclass

TERMINAL = {"DONE", "FAILED", "CANCELLED", "DRAINED", "UPDATED"}


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    job_name: str
    state: str
