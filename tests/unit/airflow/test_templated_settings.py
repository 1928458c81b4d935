"""A task's settings are its rendered `config` field: the k2f Variable read when the task is rendered, the
run's declared params applied, a run whose conf sets an undeclared key refused before the task acts, and no
credential among what the UI's Rendered Template view is sent."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields
from k2f_airflow.operators.health import HealthCheckOperator
from k2f_airflow.operators.launch import StartPipelineOperator, launch_plan
from k2f_airflow.operators.replay import ReplayErrorsOperator
from k2f_airflow.sensors.job_state import JobStoppedSensor

from tests.unit.airflow.conftest import LOCAL, rendered, variable_context

TOKEN = "T0KEN-of-the-webhook"


class FakeRun:
    def __init__(self, conf):
        self.conf = conf


class FakeDag:
    def __init__(self, params):
        self.params = params


def _run(context, declared, conf):  # noqa: ANN001, ANN202
    """The context of a run of a DAG declaring `declared`, triggered with `conf` (merged into params)."""
    params = {**dict.fromkeys(declared), **conf}
    return variable_context(
        {**context, "dag": FakeDag(dict.fromkeys(declared)), "dag_run": FakeRun(conf), "params": params}
    )


@pytest.mark.parametrize(
    "conf", [{"py_interpreter": "/bin/sh"}, {"fhir_base_url": "http://elsewhere/fhir"}, {"error_bucket": "x"}]
)
def test_a_run_whose_conf_sets_an_undeclared_key_is_refused_when_rendered(conf, context, variables):
    variables(LOCAL)
    key = next(iter(conf))
    op = StartPipelineOperator(task_id="start_pipeline")
    with pytest.raises(AirflowFailException, match=f"conf sets {key}, which this DAG does not accept") as refused:
        rendered(op, _run(context, ("job_name", "topics"), conf))
    assert str(conf[key]) not in str(refused.value)  # the key, never the value


def test_declared_params_override_the_variable_and_the_rendered_config_says_so(context, variables):
    variables({**LOCAL, "job_name": "from-variable"})
    op = rendered(JobStoppedSensor(task_id="wait"), _run(context, ("job_name", "topics"), {"job_name": "from-trigger"}))
    assert op.settings.job_name == "from-trigger" and op.config["job_name"] == "from-trigger"
    undeclared = variable_context({**context, "dag": FakeDag({}), "params": {"job_name": "undeclared"}})
    assert rendered(JobStoppedSensor(task_id="wait"), undeclared).settings.job_name == "from-variable"


def test_the_rendered_fields_hold_no_alert_setting(context, variables):
    variables({**LOCAL, "alert_webhook_url": f"https://hooks.test/services/{TOKEN}", "alert_emails": "oncall@x.test"})
    for op in (
        StartPipelineOperator(task_id="start_pipeline"),
        HealthCheckOperator(task_id="job_state", check="job_state"),
        ReplayErrorsOperator(task_id="replay_errors"),
    ):
        rendered(op, variable_context(context))
        shown = json.dumps(_serialize_rendered_fields(op))
        assert TOKEN not in shown and "oncall@" not in shown, op.task_id
        assert op.settings.topics == "patients,patients-b" and "topics" in op.config


def test_start_pipeline_renders_the_providers_arguments_from_the_settings(context, variables, local_cfg):
    variables(LOCAL)
    op = rendered(StartPipelineOperator(task_id="start_pipeline"), variable_context(context))
    plan = launch_plan(local_cfg)
    assert {k: getattr(op, k) for k in plan} == plan
    shown = _serialize_rendered_fields(op)
    assert shown["pipeline_options"]["topics"] == "patients,patients-b"
    assert shown["runner"] == plan["runner"] and shown["py_file"] == plan["py_file"]
    # The job reads the Kafka secret itself: what is passed on is the secret's Secret Manager name.
    assert op.pipeline_options["kafka_secret_resource_name"] == LOCAL["kafka_secret_resource_name"]


def test_a_task_without_the_variable_fails_without_retry_naming_it(context, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_K2F", raising=False)
    with pytest.raises(AirflowFailException, match="Airflow Variable k2f is not set"):
        rendered(ReplayErrorsOperator(task_id="replay_errors"), variable_context(context))


def test_a_task_given_its_settings_by_the_dag_does_not_read_the_variable(context, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_K2F", raising=False)
    op = rendered(ReplayErrorsOperator(task_id="replay_errors", config={**LOCAL, "error_bucket": "other"}), context)
    assert op.settings.error_bucket == "other"
