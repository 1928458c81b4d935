"""One health check as a task: fails with a short summary (no patient data) when the check does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from k2f_airflow import health
from k2f_airflow.config import K2fConfig
from k2f_airflow.operators.checks import CheckOperator


def window_start(context: Any, cfg: K2fConfig) -> datetime:
    """Since when to look: the scheduled interval's start, or the lookback for a manual run."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and end > start:
        return start
    return datetime.now(UTC) - timedelta(minutes=cfg.health_lookback_minutes)


class HealthCheckOperator(CheckOperator):
    """Runs `k2f_airflow.health.CHECKS[check]`; skipped when it does not apply to the runner."""

    checks = health.CHECKS
    ui_color = "#e8eef8"

    def run(self, cfg: K2fConfig, context: Any) -> str:
        try:
            return health.CHECKS[self.check](cfg, window_start(context, cfg))
        except health.NotApplicable as exc:
            raise AirflowSkipException(str(exc)) from None
        except health.Unhealthy as exc:
            raise AirflowException(f"{self.check}: {exc}") from None
