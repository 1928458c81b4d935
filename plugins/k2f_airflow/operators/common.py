"""What every k2f task does with its settings, and its one-line summary.

A task's settings are its `config` templated field, `{{ var.value.get('k2f', '') }}` unless the DAG passes
another: Airflow renders it, reading the `k2f` Variable once, when the task runs (never when a DAG file is
parsed). Rendering then refuses a run whose conf says more than the DAG declares, validates the settings,
applies the run's declared params, and leaves in `config` the settings the task works with. That is what the
UI's Rendered Template view shows and keeps: names, ids and flags, since secrets travel by their Secret
Manager name; the failure callback's alert settings, which may embed a token, are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from k2f_airflow.config import VARIABLE, ConfigError, K2fConfig, parse_config, task_settings

log = logging.getLogger(__name__)
_SETTINGS = {f.name for f in fields(K2fConfig)}
CONFIG_TEMPLATE = "{{ var.value.get('" + VARIABLE + "', '') }}"


def declared_params(context: Any) -> set[str]:
    """The params the DAG file declares: the only keys a trigger may set."""
    dag = context.get("dag")
    return set(dag.params.keys()) if dag is not None and dag.params is not None else set()


def undeclared_conf_keys(context: Any) -> list[str]:
    """Keys of the run's conf the DAG does not declare (Airflow itself merges any key into params)."""
    dag_run = context.get("dag_run")
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    return sorted(str(k) for k in conf if k not in declared_params(context))


def refuse_undeclared_conf(context: Any) -> None:
    """Fail the task, before it acts, when the trigger's conf carries a key the DAG does not declare.

    Without this, anyone allowed to trigger a DAG could set any setting (the launcher's interpreter, the
    FHIR store, the buckets) through the run's conf. The message names the keys, never their values.
    """
    extra = undeclared_conf_keys(context)
    if extra:
        allowed = ", ".join(sorted(declared_params(context))) or "none"
        raise AirflowFailException(
            f"this run's conf sets {', '.join(extra)}, which this DAG does not accept (accepted: {allowed}); "
            "settings live in the Airflow Variable k2f, which only its editors can change"
        )


def run_settings(context: Any, raw: Any) -> K2fConfig:
    """The settings for this task instance from the Variable's value `raw`, overridden by the declared params;
    AirflowFailException (no retry can fix it) naming the setting when they are wrong."""
    refuse_undeclared_conf(context)
    params = context.get("params") or {}
    declared = declared_params(context) & _SETTINGS
    overrides = {k: v for k, v in dict(params).items() if k in declared}
    try:
        return parse_config(raw).with_overrides(overrides)
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from None


class TemplatedSettings(BaseOperator):
    """The `config` templated field and, once rendered, `self.settings` (a K2fConfig) for execute(). A base
    of its own, or first in the bases of a sensor or a provider's operator (a BaseOperator subclass itself,
    so Airflow applies its arguments' defaults)."""

    template_fields: Sequence[str] = ("config",)
    template_fields_renderers = {"config": "json"}
    settings: K2fConfig

    def __init__(self, *, config: Any = CONFIG_TEMPLATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self.settings = run_settings(context, self.config)
        self.config = task_settings(self.settings)


def summarize(context: Any, summary: str) -> str:
    """Log the task's one-line outcome and keep it as the `summary` XCom (shown on the task's XCom tab)."""
    log.info("summary: %s", summary)
    context["ti"].xcom_push(key="summary", value=summary)
    return summary
