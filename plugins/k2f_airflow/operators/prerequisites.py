"""One launch prerequisite as a task: it fails, without retrying, with a message that names the fix."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from k2f_airflow import prerequisites
from k2f_airflow.config import ConfigError, K2fConfig
from k2f_airflow.operators.checks import CheckOperator


class PrerequisiteCheckOperator(CheckOperator):
    """Runs `k2f_airflow.prerequisites.CHECKS[check]` with the run's settings."""

    checks = prerequisites.CHECKS
    ui_color = "#e8f4ea"

    def run(self, cfg: K2fConfig, context: Any) -> str:
        try:
            return prerequisites.CHECKS[self.check](cfg)
        except (prerequisites.PrerequisiteFailed, ConfigError) as exc:
            # A retry cannot fix a missing bucket or topic: fail at once with the fix.
            raise AirflowFailException(f"{self.check}: {exc}") from None
