"""What the four DAG files share: owner, retries, tags, start date and schedules.

Schedules are DAG structure, fixed when the file is parsed, so they come from environment variables
(Composer: environment variables of the environment), never from Airflow Variables, which would need
the database at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

OWNER = "kafka-to-fhir"
TAGS = ["kafka-to-fhir"]
START_DATE = datetime(2025, 1, 1)
HEALTH_SCHEDULE = os.environ.get("K2F_HEALTH_SCHEDULE", "*/5 * * * *")
REPLAY_SCHEDULE = os.environ.get("K2F_REPLAY_SCHEDULE", "*/30 * * * *")


def default_args(retries: int = 1, **extra: Any) -> dict[str, Any]:
    return {"owner": OWNER, "retries": retries, "retry_delay": timedelta(minutes=1), **extra}


def dag_kwargs(dag_id: str, doc_md: str | None, schedule: str | None, retries: int, **extra: Any) -> dict[str, Any]:
    """The DAG(...) arguments every k2f DAG shares; `extra` goes into default_args (e.g. callbacks)."""
    return {
        "dag_id": dag_id,
        "doc_md": doc_md,
        "schedule": schedule,
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": [*TAGS, dag_id.removeprefix("k2f_")],
        "default_args": default_args(retries=retries, **extra),
    }
