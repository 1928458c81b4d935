"""A task that runs one named check function from a registry and reports its one-line summary.

The launch prerequisites and the health checks are both such tasks; they differ in the registry and in
what a failure means (AirflowFailException: fix first, or AirflowException: alert and try next time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from k2f_airflow.config import K2fConfig
from k2f_airflow.operators.common import TemplatedSettings, summarize


class CheckOperator(TemplatedSettings):
    """Subclasses set `checks` (name -> function) and implement `run(cfg, context)`, which runs `self.check`
    with the rendered settings."""

    checks: ClassVar[Mapping[str, Callable[..., str]]] = {}

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        if check not in self.checks:
            raise ValueError(f"unknown check {check!r}; one of {sorted(self.checks)}")
        super().__init__(**kwargs)
        self.check = check

    def run(self, cfg: K2fConfig, context: Any) -> str:
        raise NotImplementedError

    def execute(self, context: Any) -> str:
        return summarize(context, self.run(self.settings, context))
