"""What every k2f operator does first: refuse a run whose conf says more than the DAG declares, then read
the settings once, overridden by the run's declared params."""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from k2f_airflow.config import ConfigError, K2fConfig, load_config

log = logging.getLogger(__name__)
_SETTINGS = {f.name for f in fields(K2fConfig)}


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


def task_config(context: Any) -> K2fConfig:
    """The settings for this task instance: one read of the `k2f` Variable, then the declared params.

    Call it once per task instance and pass the result on: every call is a Variable (secret) lookup.
    """
    refuse_undeclared_conf(context)
    params = context.get("params") or {}
    declared = declared_params(context) & _SETTINGS
    overrides = {k: v for k, v in dict(params).items() if k in declared}
    try:
        return load_config().with_overrides(overrides)
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from None


def summarize(context: Any, summary: str) -> str:
    """Log the task's one-line outcome and keep it as the `summary` XCom (shown on the task's XCom tab)."""
    log.info("summary: %s", summary)
    context["ti"].xcom_push(key="summary", value=summary)
    return summary
