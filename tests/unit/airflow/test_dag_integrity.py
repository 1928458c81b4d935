"""Every DAG imports fast, without error and without network; owners, retries, tags and docs are set."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.unit.airflow.conftest import ROOT

DAGS = ROOT / "dags"
EXPECTED = {"k2f_launch", "k2f_health", "k2f_error_replay", "k2f_drain", "k2f_reprocess"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    # Warm the shared imports (Airflow, providers) as the DAG processor has them, then time the DAGs.
    DagBag(dag_folder=str(DAGS / "k2f_launch.py"))
    original = socket.socket.connect

    def no_network(*args, **kwargs):
        raise AssertionError("a DAG file opened a network connection at parse time")

    socket.socket.connect = no_network
    try:
        started = time.monotonic()
        bag = DagBag(dag_folder=str(DAGS))
        bag.elapsed = time.monotonic() - started
    finally:
        socket.socket.connect = original
    return bag


def test_every_dag_imports_without_error(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


def test_each_file_parses_in_under_two_seconds(dagbag):
    stats = {Path(s.file).name: s.duration for s in dagbag.dagbag_stats}
    assert len(stats) == len(EXPECTED)
    for name, duration in stats.items():
        seconds = duration.total_seconds() if hasattr(duration, "total_seconds") else float(duration)
        assert seconds < 2.0, name


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_owner_retries_tags_docs(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.doc_md and dag_id in dag.doc_md
    assert "kafka-to-fhir" in dag.tags
    assert dag.catchup is False and dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.owner == "kafka-to-fhir", task.task_id
        assert task.retries is not None, task.task_id


def test_launch_checks_every_prerequisite_before_starting(dagbag):
    dag = dagbag.dags["k2f_launch"]
    assert dag.schedule is None
    from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator

    start = dag.get_task("start_pipeline")
    # The provider's operator, its execute() as it is; only its arguments are rendered from the settings.
    assert isinstance(start, BeamRunPythonPipelineOperator)
    assert {"config", "py_file", "pipeline_options", "dataflow_config"} <= set(start.template_fields)
    checks = start.upstream_task_ids
    assert checks == {
        "prerequisites.mappings",
        "prerequisites.buckets",
        "prerequisites.kafka_secret",
        "prerequisites.kafka_topics",
        "prerequisites.fhir_store",
        "prerequisites.no_running_job",
    }
    running = dag.get_task("wait_until_running")
    assert running.upstream_task_ids == {"start_pipeline"}
    assert "plan_launch" not in dag.task_ids  # no plan travels through an XCom
    assert set(dag.params.keys()) == {"job_name", "topics"}


def test_health_and_replay_are_scheduled_and_alert(dagbag):
    from k2f_airflow.notify import notify_failure

    for dag_id, count in (("k2f_health", 5), ("k2f_error_replay", 1)):
        dag = dagbag.dags[dag_id]
        assert dag.schedule in ("*/5 * * * *", "*/30 * * * *")
        assert len(dag.tasks) == count
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert notify_failure in callbacks, task.task_id


def test_drain_waits_for_the_stop(dagbag):
    dag = dagbag.dags["k2f_drain"]
    assert dag.get_task("wait_until_stopped").upstream_task_ids == {"drain_dataflow_job", "cancel_local_jobs"}
    drain = dag.get_task("drain_dataflow_job")
    assert drain.operator_class.__name__ == "DataflowStopJobOperator"  # the provider's, as it is
    assert drain.partial_kwargs["drain_pipeline"] is True


def test_reprocess_checks_its_prerequisites_then_runs_the_beam_operator_rendered_from_the_settings(dagbag):
    from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator

    dag = dagbag.dags["k2f_reprocess"]
    assert dag.schedule is None
    assert set(dag.params.keys()) == {"topics", "from", "to", "input_pattern", "mappings", "dry_run"}
    run = dag.get_task("run_reprocess")
    assert type(run).__name__ == "RunReprocessOperator" and isinstance(run, BeamRunPythonPipelineOperator)
    assert run.upstream_task_ids == {"prerequisites.mappings", "prerequisites.buckets", "prerequisites.fhir_store"}
    done = dag.get_task("wait_until_done")
    assert type(done).__name__ == "WaitForReprocessSensor" and done.upstream_task_ids == {"run_reprocess"}
    report = dag.get_task("report_reprocess")
    assert report.upstream_task_ids == {"wait_until_done", "run_reprocess"}
    assert report.dry_run == "{{ params.dry_run }}"


def test_our_tasks_take_their_settings_as_the_rendered_variable(dagbag):
    from k2f_airflow.operators.common import CONFIG_TEMPLATE

    ours = [
        task for dag in dagbag.dags.values() for task in dag.tasks if type(task).__module__.startswith("k2f_airflow.")
    ]
    assert len(ours) > 15
    for task in ours:
        assert "config" in task.template_fields and task.config == CONFIG_TEMPLATE, task.task_id
