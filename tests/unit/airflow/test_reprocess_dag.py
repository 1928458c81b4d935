"""k2f_reprocess: the run's source from its params, the job name that carries it, the refusal of an
overlapping reprocess, and the Beam provider's operator with its arguments rendered on either runner."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException
from k2f_airflow.config import K2fConfig
from k2f_airflow.hooks.jobs import LocalJobsClient
from k2f_airflow.operators.reprocess import JOB_NAME, ReportReprocessOperator, RunReprocessOperator
from k2f_airflow.reprocess import PREFIX, ReprocessRefused, job_name, overlapping, reprocess_plan, run_source

from beam_pipeline.contracts.reprocess_source import ReprocessSource
from launcher.job_states import JobInfo
from tests.unit.airflow.conftest import DATAFLOW, LOCAL, rendered

DAY = {"from": "2026-12-01", "to": "2026-12-02"}
BEAM_HOOK = "airflow.providers.apache.beam.hooks.beam.BeamHook"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _source(topics: tuple[str, ...], start: str, end: str) -> ReprocessSource:
    return ReprocessSource(topics, _ms(start), _ms(end))


def test_a_job_name_is_a_dataflow_name_that_carries_its_range():
    name = job_name(_source(("patients", "Synthea.conditions"), "2026-12-01", "2026-12-02"), "manual__2026")
    assert name.startswith(f"{PREFIX}20261201t000000-20261202t000000-")
    assert all(c.islower() or c.isdigit() or c == "-" for c in name) and len(name) < 1024
    files = job_name(ReprocessSource(input_pattern="gs://h/*.ndjson"), "r")
    assert files.startswith(f"{PREFIX}files-")


def test_only_a_running_reprocess_over_the_same_topic_and_time_or_files_overlaps():
    day = _source(("patients",), "2026-12-01", "2026-12-02")
    running = [
        job_name(_source(("patients", "b"), "2026-12-01T12:00:00", "2026-12-03"), "other"),
        job_name(_source(("patients",), "2026-12-02", "2026-12-03"), "next-day"),
        job_name(_source(("b",), "2026-12-01", "2026-12-02"), "other-topic"),
        job_name(ReprocessSource(input_pattern="gs://h/*"), "files"),
        f"{PREFIX}made-by-hand",
    ]
    assert overlapping(day, running) == [running[0], running[4]]  # a name it cannot read: refused, to be safe
    assert overlapping(ReprocessSource(input_pattern="gs://h/*"), running) == [running[3], running[4]]


def test_the_source_comes_from_the_params_and_the_topics_setting(local_cfg):
    assert run_source(local_cfg, DAY) == _source(("patients", "patients-b"), "2026-12-01", "2026-12-02")
    with pytest.raises(ReprocessRefused, match="to must be after from"):
        run_source(local_cfg, {"from": "2026-12-02", "to": "2026-12-01"})
    with pytest.raises(ReprocessRefused, match="name what to reprocess"):
        run_source(local_cfg, {})


def test_local_plan_runs_the_reprocess_entry_point_in_batch(local_cfg, context):
    source = run_source(local_cfg, DAY)
    plan = reprocess_plan(local_cfg, source, "kafka-to-fhir-reprocess-x", dry_run=True)
    json.dumps(plan)  # an XCom: plain JSON
    assert plan["py_file"].endswith("beam_pipeline/reprocess.py")
    options = plan["pipeline_options"]
    assert options["from"] == "2026-12-01T00:00:00Z" and options["to"] == "2026-12-02T00:00:00Z"
    assert options["topics"] == "patients,patients-b" and options["dry_run"] is True and options["detach"] is True
    assert options["job_name"] == "kafka-to-fhir-reprocess-x"
    assert "streaming" not in options and "kafka_secret_resource_name" not in options
    assert "expansion_service" not in options  # no Kafka read


def test_dataflow_plan_waits_for_the_batch_job_under_its_own_name(dataflow_cfg):
    source = ReprocessSource(("legacy",), input_pattern="gs://history/*.ndjson")
    plan = reprocess_plan(dataflow_cfg, source, "kafka-to-fhir-reprocess-files-1-2", dry_run=False)
    assert plan["runner"] == "DataflowRunner"
    assert plan["dataflow_config"]["job_name"] == "kafka-to-fhir-reprocess-files-1-2"
    assert plan["dataflow_config"]["wait_until_finished"] is False  # wait_until_done waits, deferred
    options = plan["pipeline_options"]
    assert options["input_pattern"] == "gs://history/*.ndjson" and options["topics"] == "legacy"
    assert "dry_run" not in options and "streaming" not in options
    assert options["temp_location"] == "gs://tmp-bucket/tmp" and options["max_num_workers"] == 3


def _jobs(running: list[str]):  # noqa: ANN202
    """The runner's jobs hook, the reprocesses named `running` running on it."""
    jobs = mock.create_autospec(LocalJobsClient, instance=True)
    jobs.active_jobs_named_from.return_value = [JobInfo(f"id-{i}", n, "RUNNING") for i, n in enumerate(running)]
    return mock.patch("k2f_airflow.hooks.jobs.jobs_hook", return_value=jobs)


def _rendered(config, context, params):  # noqa: ANN001, ANN202
    """run_reprocess rendered as Airflow renders it, from `config` and the run's `params`; and that context."""
    context = {**context, "params": params, "run_id": "manual__1"}
    return rendered(RunReprocessOperator(task_id="run_reprocess", config=config), context), context


def _run(config, context, params, running=()):  # noqa: ANN001, ANN202
    """run_reprocess as Airflow runs it, beside `running` reprocesses: the provider's call that would start
    the job (None when it was not started)."""
    op, context = _rendered(config, context, params)
    with _jobs(list(running)), mock.patch(f"{BEAM_HOOK}.start_python_pipeline") as start:
        op.execute(context)
    return start.call_args.kwargs if start.called else None


def test_run_reprocess_renders_the_plan_then_starts_the_entry_point_under_the_job_name(local_cfg, context):
    name = job_name(run_source(local_cfg, DAY), "manual__1")
    plan = reprocess_plan(local_cfg, run_source(local_cfg, DAY), name, dry_run=True)
    op, _ = _rendered(LOCAL, context, {**DAY, "dry_run": True})
    assert {k: getattr(op, k) for k in plan} == plan  # what the Rendered Template view shows
    started = _run(LOCAL, context, {**DAY, "dry_run": True})
    variables = started["variables"]
    assert variables["from"] == "2026-12-01T00:00:00Z" and variables["dry_run"] is True
    assert variables["job_name"] == name  # the name wait_until_done and report_reprocess look for
    assert started["py_interpreter"] == sys.executable
    assert context["ti"].xcom[JOB_NAME] == name
    assert context["ti"].xcom["summary"] == f"dry run of reprocess {name} on {op.runner} (local)"


def test_run_reprocess_on_dataflow_renders_the_job_under_its_own_name(context):
    config, params = {**DATAFLOW, "topics": "legacy"}, {"input_pattern": "gs://history/*.ndjson"}
    op = rendered(RunReprocessOperator(task_id="run_reprocess", config=config), {**context, "params": params})
    name = job_name(run_source(K2fConfig(**config), params), "")
    assert op.runner == "DataflowRunner" and op.dataflow_config["job_name"] == name
    assert op.pipeline_options["input_pattern"] == "gs://history/*.ndjson" and "dry_run" not in op.pipeline_options


def test_run_reprocess_refuses_a_run_over_a_running_reprocess_range_before_starting(context):
    busy = job_name(_source(("patients",), "2026-12-01T06:00:00", "2026-12-01T07:00:00"), "earlier")
    with pytest.raises(AirflowFailException, match="overlapping range"):
        _run(LOCAL, context, DAY, [busy])
    assert JOB_NAME not in context["ti"].xcom
    started = _run(LOCAL, context, {"from": "2026-12-02", "to": "2026-12-03"}, [busy])
    assert started["variables"]["job_name"].startswith(f"{PREFIX}20261202t000000-20261203t000000-")


def test_run_reprocess_refuses_wrong_params_when_rendered(context):
    with pytest.raises(AirflowFailException, match="name what to reprocess"):
        _rendered(LOCAL, context, {"to": "2026-12-03"})


def _report(context, jobs, params, bucket=None, wait=0, storage_error=None):  # noqa: ANN001, ANN202
    """report_reprocess as the DAG declares it, rendered with the run's `params`, on a runner with `jobs`,
    its error bucket `bucket` (empty by default; `storage_error` raised instead), waiting `wait` seconds for
    a summary object."""
    from tests.unit.airflow.test_replay import Bucket

    op = ReportReprocessOperator(
        task_id="report_reprocess", job_name="kafka-to-fhir-reprocess-x", dry_run="{{ params.dry_run }}", config=LOCAL
    )
    op = rendered(op, {**context, "params": params})
    storage = mock.MagicMock()
    storage.return_value.bucket.return_value = bucket if bucket is not None else Bucket()
    if storage_error is not None:
        storage.return_value.bucket.side_effect = storage_error
    with (
        mock.patch("k2f_airflow.hooks.jobs.jobs_hook", return_value=jobs),
        mock.patch("k2f_airflow.hooks.gcs.StorageHook", storage),
        mock.patch("k2f_airflow.operators.reprocess.SUMMARY_WAIT_SECONDS", wait),
    ):
        return op.execute(context)


def test_a_bucket_the_report_cannot_reach_is_waited_out_then_the_counters_summarise(context):
    jobs = mock.create_autospec(LocalJobsClient, instance=True)
    jobs.jobs_named.return_value = [JobInfo("job-7", "kafka-to-fhir-reprocess-x", "DONE")]
    jobs.state.return_value = "DONE"
    jobs.counters.return_value = {"reprocess/messages": 3, "write_to_fhir_store/messages_written": 3}
    with mock.patch("beam_pipeline.contracts.reprocess_summary.time.sleep") as slept:
        report = _report(context, jobs, {"dry_run": False}, wait=2, storage_error=RuntimeError("no credentials"))
    assert (report["from"], report["written"], report["accounted"]) == ("counters", 3, True)
    assert slept.call_count == 3  # two polls for the object, then one for the counters to agree


def test_the_report_is_the_summary_object_the_job_wrote_waited_for_and_the_newest_launchs(context):
    from beam_pipeline.contracts.reprocess_summary import summary_object
    from tests.unit.airflow.test_replay import Bucket

    jobs = mock.create_autospec(LocalJobsClient, instance=True)
    jobs.jobs_named.return_value = [JobInfo("job-7", "kafka-to-fhir-reprocess-x", "DONE")]
    jobs.state.return_value = "DONE"
    bucket = Bucket()
    prefix = "reprocess/job=kafka-to-fhir-reprocess-x/"
    counts = {"reprocess/messages": 300, "write_to_fhir_store/messages_written": 300}
    looks: list[float] = []

    def written_after_two_looks(seconds: float) -> None:
        looks.append(seconds)
        if len(looks) == 2:  # the runner said DONE before the job's last bundles had run (Prism does)
            bucket.put(f"{prefix}launch=000001765000999999/summary.json", summary_object("x", 2, counts))
            bucket.put(f"{prefix}launch=000001765000000000/summary.json", summary_object("x", 1, {"a/b": 9}))

    with mock.patch("beam_pipeline.contracts.reprocess_summary.time.sleep", side_effect=written_after_two_looks):
        report = _report(context, jobs, {"dry_run": False}, bucket=bucket, wait=60)
    assert len(looks) == 2 and (report["messages"], report["written"]) == (300, 300)
    assert (report["accounted"], report["from"]) == (True, "summary object")
    jobs.counters.assert_not_called()


def test_the_report_is_the_ended_jobs_summary_from_its_counters(context):
    jobs = mock.create_autospec(LocalJobsClient, instance=True)
    jobs.jobs_named.return_value = [JobInfo("job-7", "kafka-to-fhir-reprocess-x", "DONE")]
    jobs.state.return_value = "DONE"
    jobs.counters.return_value = {
        "reprocess/objects_read": 3,
        "reprocess/messages": 300,
        "write_to_fhir_store/messages_written": 291,
        "write_to_fhir_store/messages_unchanged": 5,
        "write_to_fhir_store/messages_superseded": 4,
        "dead_letter/reprocess.corrupt_archive_line": 1,  # a line, not a message
        "reprocess_dry_run/messages_would_write": 300,
    }
    with mock.patch("beam_pipeline.contracts.reprocess_summary.time.sleep") as slept:
        report = _report(context, jobs, {"dry_run": False})
    assert slept.call_count == 1 and report["accounted"] is True  # two reads that agree and add up
    assert report["job_id"] == "job-7" and report["messages"] == 300 and report["written"] == 291
    assert (report["unchanged"], report["superseded"]) == (5, 4) and report["dry_run"] is False
    assert report["failed"] == {"reprocess.corrupt_archive_line": 1}
    assert json.loads(context["ti"].xcom["summary"]) == report
    assert {c.args for c in jobs.counters.call_args_list} == {("job-7",)}
    with mock.patch("beam_pipeline.contracts.reprocess_summary.time.sleep"):
        dry = _report(context, jobs, {"dry_run": True})  # the param rendered as text
    assert dry["dry_run"] is True and dry["would_write_messages"] == 300
    jobs.state.return_value = "FAILED"
    jobs.counters.reset_mock()
    with pytest.raises(AirflowFailException, match="ended FAILED"):
        _report(context, jobs, {"dry_run": False})
    jobs.counters.assert_called_once_with("job-7")  # no waiting on a job that did not finish


def test_dataflow_counters_are_the_jobs_committed_user_counters_summed_over_steps():
    from airflow.providers.google.cloud.hooks.dataflow import DataflowHook as RealDataflowHook
    from k2f_airflow.hooks.jobs import DataflowJobsHook

    def metric(name: str, value: int, step: str, **context: str) -> dict:
        return {
            "name": {"origin": "user", "name": name, "context": {"namespace": "reprocess", "step": step, **context}},
            "scalar": value,
        }

    with (
        mock.patch.object(RealDataflowHook, "__init__", return_value=None),
        mock.patch.object(DataflowJobsHook, "get_conn") as get_conn,
        mock.patch.object(DataflowJobsHook, "num_retries", 5),
    ):
        jobs = DataflowJobsHook("gcp", "df-project", "europe-west1")
        jobs_api = get_conn.return_value.projects.return_value.locations.return_value.jobs.return_value
        jobs_api.getMetrics.return_value.execute.return_value = {
            "metrics": [
                metric("messages", 2, "s1"),
                metric("messages", 3, "s2"),
                metric("messages", 9, "s2", tentative="true"),
                {"name": {"origin": "dataflow/v1b3", "name": "ElementCount"}, "scalar": 7},
            ]
        }
        assert jobs.counters("j1") == {"reprocess/messages": 5}
        assert jobs.counters("j1", running=True) == {"reprocess/messages": 9}  # the work in progress counted
    jobs_api.getMetrics.assert_called_with(projectId="df-project", location="europe-west1", jobId="j1")


# -- the wait logs the running job's progress --------------------------------------------------------------


class RunningReprocess:
    """A runner on which one reprocess runs until `ends_at` on the test's clock, writing 10 messages a second
    (two of them failed all along); its counters cannot be read while `unreadable`."""

    def __init__(self, clock: dict[str, float], ends_at: float) -> None:
        self.clock = clock
        self.ends_at = ends_at
        self.unreadable = False

    def active_jobs(self, name: str) -> list[JobInfo]:
        return [JobInfo("job-9", name, "RUNNING")] if self.clock["now"] < self.ends_at else []

    def counters(self, job_id: str, *, running: bool = False) -> dict[str, int]:
        assert job_id == "job-9" and running  # progress counts the bundles still running
        if self.unreadable:
            raise ConnectionError("refused")
        done = int(10 * self.clock["now"])
        return {"reprocess/messages": done + 100, "write_to_fhir_store/messages_written": done, "dead_letter/x.y": 2}


class Log:
    """The trigger's log, as the task log receives it: the lines, formatted."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    warning = info


def _wait_trigger(poll: float = 15.0):  # noqa: ANN202
    from k2f_airflow.triggers.reprocess import ReprocessWaitTrigger

    trigger = ReprocessWaitTrigger(runner="local", job_name="kafka-to-fhir-reprocess-x", poll_seconds=poll)
    clock = {"now": 0.0}
    trigger.clock = lambda: clock["now"]
    log = Log()
    patch = mock.patch.object(ReprocessWaitTrigger, "log", new_callable=mock.PropertyMock, return_value=log)
    return trigger, clock, log, patch


def test_the_wait_logs_a_progress_line_a_minute_while_the_job_runs():
    trigger, clock, log, logging_to = _wait_trigger()
    hook = RunningReprocess(clock, ends_at=290.0)
    event = None
    with logging_to:
        while event is None:  # a look every 15 s, as the trigger polls
            event = trigger.check(hook)
            clock["now"] += 15.0
    lines = [line for line in log.lines if line.startswith("reprocess progress:")]
    # Looks at 0, 15, ..., 300 (ended): a line at 0, 60, 120, 180 and 240, not one per look.
    assert len(lines) == 5
    assert lines[0] == "reprocess progress: 2 messages done of 100 read, rate from the next line, 2 failed"
    assert lines[1] == "reprocess progress: 602 messages done of 700 read, 10.0/s over the last 60 s, 2 failed"
    assert event == {"status": "success", "job_name": "kafka-to-fhir-reprocess-x", "state": "STOPPED"}


def test_unreadable_counters_leave_the_wait_as_it_was():
    trigger, clock, log, logging_to = _wait_trigger()
    hook = RunningReprocess(clock, ends_at=1000.0)
    hook.unreadable = True
    with logging_to:
        assert trigger.check(hook) is None  # still running; its counters could not be read
        assert "reprocess progress: the job's counters could not be read (ConnectionError)" in log.lines
        hook.unreadable = False
        clock["now"] = 15.0
        assert trigger.log_progress(hook) is not None  # still due: the next look tries again


def test_the_reprocess_wait_defers_to_the_progress_trigger_with_the_stopped_waits_settings(context):
    from airflow.sdk.exceptions import TaskDeferred
    from k2f_airflow.operators.reprocess import WaitForReprocessSensor
    from k2f_airflow.triggers.job_state import STOPPED, JobStateTrigger
    from k2f_airflow.triggers.reprocess import ReprocessWaitTrigger

    running = RunningReprocess({"now": 0.0}, ends_at=1000.0)
    sensor = WaitForReprocessSensor(
        task_id="wait_until_done", job_name="kafka-to-fhir-reprocess-x", poke_interval=15, config=LOCAL
    )
    with (
        mock.patch.object(JobStateTrigger, "hook", return_value=running),
        pytest.raises(TaskDeferred) as deferred,
    ):
        rendered(sensor, context).execute(context)
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "k2f_airflow.triggers.reprocess.ReprocessWaitTrigger"
    assert kwargs["target"] == STOPPED and kwargs["job_name"] == "kafka-to-fhir-reprocess-x"
    assert kwargs["poll_seconds"] == 15 and kwargs["progress_seconds"] == 60
    assert kwargs["local_job_endpoint"] == "127.0.0.1:8073"
    assert isinstance(ReprocessWaitTrigger(**kwargs), ReprocessWaitTrigger)  # what the triggerer rebuilds


class AsyncRunningReprocess:
    """RunningReprocess's waiting question over asyncio, as the triggerer's hook asks it (no counters)."""

    def __init__(self, running: RunningReprocess) -> None:
        self._running = running

    async def active_jobs(self, name: str) -> list[JobInfo]:
        return self._running.active_jobs(name)


def test_the_deferred_wait_logs_the_progress_lines_too():
    import asyncio

    from k2f_airflow.triggers.job_state import JobStateTrigger

    trigger, clock, log, logging_to = _wait_trigger()
    running = RunningReprocess(clock, ends_at=290.0)
    event = None
    with logging_to, mock.patch.object(JobStateTrigger, "hook", return_value=running) as blocking:
        while event is None:  # the trigger's loop: a look every 15 s through the asyncio hook
            event = asyncio.run(trigger.acheck(AsyncRunningReprocess(running)))
            clock["now"] += 15.0
    lines = [line for line in log.lines if line.startswith("reprocess progress:")]
    assert len(lines) == 5 and lines[1].startswith("reprocess progress: 602 messages done of 700 read")
    assert blocking.call_count == 1  # the counters' hook is built once for the wait
    assert event == {"status": "success", "job_name": "kafka-to-fhir-reprocess-x", "state": "STOPPED"}
