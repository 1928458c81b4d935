"""What every k2f operator does first: settings from the Variables, overridden by the run's params."""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

from k2f_airflow.config import K2fConfig, load_config

log = logging.getLogger(__name__)
_SETTINGS = {f.name for f in fields(K2fConfig)}


def task_config(context: Any) -> K2fConfig:
    """load_config() with the DAG run's params that name a setting (e.g. launch's job_name, topics)."""
    params = context.get("params") or {}
    overrides = {k: v for k, v in dict(params).items() if k in _SETTINGS}
    return load_config().with_overrides(overrides)


def summarize(context: Any, summary: str) -> str:
    """Log the task's one-line outcome and keep it as the `summary` XCom (shown on the task's XCom tab)."""
    log.info("summary: %s", summary)
    context["ti"].xcom_push(key="summary", value=summary)
    return summary
