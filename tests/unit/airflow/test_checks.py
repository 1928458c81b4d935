"""Prerequisites and health checks: each passes or fails with a summary naming the fix, never data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from unittest import mock

import httpx
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from google.api_core import exceptions
from google.oauth2.credentials import Credentials
from k2f_airflow import health, prerequisites
from k2f_airflow.hooks.gcs import StorageHook
from k2f_airflow.kafka_client import KafkaClient, PartitionLag
from k2f_airflow.notify import alert_body, send_alert
from k2f_airflow.operators.health import HealthCheckOperator
from k2f_airflow.operators.prerequisites import PrerequisiteCheckOperator

from beam_pipeline.contracts.commit_metadata import CommitMetadata
from beam_pipeline.contracts.kafka_secret import parse_kafka_secret
from beam_pipeline.fhir_store import FhirStoreClient
from beam_pipeline.kafka.connection import librdkafka_config
from launcher.job_states import JobInfo
from tests.unit.airflow.conftest import LOCAL, rendered

SINCE = datetime(2025, 1, 1, tzinfo=UTC)
STORE = "https://healthcare.googleapis.com/v1/projects/hc-project/locations/us-central1/datasets/ds/fhirStores"


def storage_raising(error):
    storage = StorageHook()
    blob = mock.Mock()
    blob.upload_from_string.side_effect = error
    storage._client = mock.Mock()
    storage._client.bucket.return_value.name = "archive"
    storage._client.bucket.return_value.blob.return_value = blob
    return storage


@pytest.mark.parametrize(
    ("error", "fix"),
    [(exceptions.NotFound("x"), "does not exist: create it"), (exceptions.Forbidden("x"), "roles/storage.objectAdmin")],
)
def test_bucket_problems_name_the_fix(local_cfg, error, fix):
    with pytest.raises(prerequisites.PrerequisiteFailed, match=fix):
        prerequisites.buckets(local_cfg, storage_raising(error))


@pytest.mark.parametrize(
    ("access", "fix"),
    [
        (mock.Mock(side_effect=exceptions.NotFound("x")), "does not exist: create it"),
        (mock.Mock(side_effect=exceptions.PermissionDenied("x")), "secretmanager.secretAccessor"),
        (mock.Mock(return_value=b'{"apiKey": "k", "apiSecret": "s"}'), "no bootstrap_servers"),
    ],
)
def test_secret_problems_name_the_fix(local_cfg, access, fix):
    with pytest.raises(prerequisites.PrerequisiteFailed, match=fix) as info:
        prerequisites.kafka_secret(local_cfg, access)
    assert '"s"' not in str(info.value)


def test_missing_topics_are_named(local_cfg):
    kafka = mock.create_autospec(KafkaClient, instance=True)
    kafka.missing_topics.return_value = ["patients-b"]
    with pytest.raises(prerequisites.PrerequisiteFailed, match="no topic.s. patients-b: create them"):
        prerequisites.kafka_topics(local_cfg, kafka)


def test_librdkafka_settings_from_the_secret():
    conn = parse_kafka_secret(b'{"bootstrap_servers": "b:9092", "apiKey": "k", "apiSecret": "s"}')
    assert librdkafka_config(conn) == {
        "bootstrap.servers": "b:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "k",
        "sasl.password": "s",
    }


def healthcare_api_client(version, seen):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json={"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"})
        return httpx.Response(200, json={"name": "store", "version": version})

    return lambda config: FhirStoreClient(
        config, transport=httpx.MockTransport(handler), google_credentials=Credentials(token="t")
    )


def test_healthcare_api_store_must_be_r4(dataflow_cfg):
    seen: list[str] = []
    assert "R4" in prerequisites.fhir_store(dataflow_cfg, healthcare_api_client("R4", seen))
    assert seen == [f"{STORE}/post", f"{STORE}/get", f"{STORE}/post/fhir/metadata"]
    with pytest.raises(prerequisites.PrerequisiteFailed, match="holds FHIR version STU3, not R4.*fhirResourceEditor"):
        prerequisites.fhir_store(dataflow_cfg, healthcare_api_client("STU3", []))


def test_a_running_job_of_the_same_name_blocks_the_launch(local_cfg):
    jobs = mock.Mock()
    jobs.active_jobs.return_value = [JobInfo("j1", "k2f-unit", "RUNNING")]
    with pytest.raises(prerequisites.PrerequisiteFailed, match="j1 .RUNNING.: drain it with the k2f_drain DAG"):
        prerequisites.no_running_job(local_cfg, jobs)
    jobs.active_jobs.assert_called_once_with("k2f-unit")


def test_the_prerequisite_operator_fails_without_retry(local_cfg, context):
    op = rendered(PrerequisiteCheckOperator(task_id="no_running_job", check="no_running_job", config=LOCAL), context)
    failing = mock.Mock(side_effect=prerequisites.PrerequisiteFailed("job is already running"))
    with (
        mock.patch.dict(prerequisites.CHECKS, {"no_running_job": failing}),
        pytest.raises(AirflowFailException, match="no_running_job: job is already running"),
    ):
        op.execute(context)


def test_job_state_needs_a_running_job(local_cfg):
    jobs = mock.Mock()
    jobs.active_jobs.return_value = [JobInfo("j1", "k2f-unit", "STARTING")]
    with pytest.raises(health.Unhealthy, match="not running .unfinished jobs: j1 STARTING"):
        health.job_state(local_cfg, SINCE, jobs)
    jobs.active_jobs.return_value = [JobInfo("j1", "k2f-unit", "RUNNING")]
    assert "RUNNING" in health.job_state(local_cfg, SINCE, jobs)


def test_consumer_lag_threshold(local_cfg):
    kafka = mock.create_autospec(KafkaClient, instance=True)
    kafka.consumer_lag.return_value = [PartitionLag("patients", 0, 5, 20006, 20001)]
    with pytest.raises(health.Unhealthy, match="20001 message.s. behind .* k2f.health_max_consumer_lag=10000"):
        health.consumer_lag(local_cfg, SINCE, kafka)
    kafka.consumer_lag.assert_called_once_with("kafka-to-fhir", ["patients", "patients-b"])


def test_consumer_lag_shows_the_messages_in_flight_per_partition(local_cfg):
    kafka = mock.create_autospec(KafkaClient, instance=True)
    metadata = CommitMetadata(job="k2f-unit", read=130, in_flight=25, settled=100, draining=False, at_ms=0)
    kafka.consumer_lag.return_value = [
        PartitionLag("patients", 0, 105, 140, 35, metadata),
        PartitionLag("patients", 1, None, 3, 3),
    ]
    summary = health.consumer_lag(local_cfg, SINCE, kafka)
    assert "38 message(s) behind" in summary
    assert "patients/0 25 in flight (read 25 past committed)" in summary and "patients/1" not in summary


def test_new_errors_are_counted_by_stage(local_cfg):
    old, new = mock.Mock(), mock.Mock()
    old.name, old.time_created = "errors/stage=write/topic=patients/date=d/a.ndjson", datetime(2024, 1, 1, tzinfo=UTC)
    new.name, new.time_created = "errors/stage=map/topic=patients/date=d/b.ndjson", datetime(2025, 1, 2, tzinfo=UTC)
    new.download_as_bytes.return_value = b'{"payload": "x"}\n{"payload": "y"}\n'
    storage = mock.create_autospec(StorageHook, instance=True)
    storage.bucket.return_value.list_blobs.return_value = [old, new]
    assert health.new_errors(local_cfg, SINCE, storage).startswith("2 new error record(s)")
    with pytest.raises(health.Unhealthy, match=r"\(map: 2\)") as info:
        health.new_errors(local_cfg.with_overrides({"health_max_new_errors": 1}), SINCE, storage)
    assert "payload" not in str(info.value)
    storage.bucket.assert_called_with("errors")


@pytest.mark.parametrize(
    ("record", "alerts"),
    [
        ({"code": "http_error", "http_status": 401, "retryable": True}, True),
        ({"code": "http_error", "http_status": 403, "retryable": True}, True),
        ({"code": "http_error", "http_status": 404, "retryable": True}, True),
        ({"code": "auth_error", "retryable": True}, True),
        ({"code": "conflict", "retryable": True}, True),
        ({"code": "reference_not_found", "http_status": 404, "retryable": True}, False),  # data order, replayed
        ({"code": "http_error", "http_status": 422, "retryable": False}, False),  # one invalid resource
        ({"code": "http_error", "http_status": 503, "retryable": True}, False),  # passing
    ],
)
def test_one_write_failure_an_operator_must_fix_alerts_below_the_threshold(local_cfg, record, alerts):
    blob = mock.Mock()
    blob.name, blob.time_created = "errors/stage=write/topic=patients/date=d/a.ndjson", datetime(2025, 1, 2, tzinfo=UTC)
    blob.download_as_bytes.return_value = (json.dumps({**record, "payload": "Jane Doe"}) + "\n").encode()
    other_job = mock.Mock()  # another job's topic: not this job's to alert on
    other_job.name, other_job.time_created = "errors/stage=write/topic=other/date=d/b.ndjson", blob.time_created
    other_job.download_as_bytes.return_value = blob.download_as_bytes.return_value
    storage = mock.create_autospec(StorageHook, instance=True)
    storage.bucket.return_value.list_blobs.return_value = [blob, other_job]
    if not alerts:
        assert health.new_errors(local_cfg, SINCE, storage).startswith("1 new error record(s)")
        return
    with pytest.raises(health.Unhealthy, match="1 of them the FHIR store refused") as info:
        health.new_errors(local_cfg, SINCE, storage)
    assert "Jane" not in str(info.value)


def test_fhir_progress_is_stalled_only_with_messages_waiting(local_cfg):
    client = mock.MagicMock()
    client.__enter__.return_value.count.return_value = 0
    kafka = mock.create_autospec(KafkaClient, instance=True)
    kafka.consumer_lag.return_value = [PartitionLag("patients", 0, 0, 0, 0)]
    assert "0 Patient" in health.fhir_progress(local_cfg, SINCE, lambda _c: client, kafka)
    client.__enter__.return_value.count.assert_called_with("Patient", {"_lastUpdated": "gt2025-01-01T00:00:00+00:00"})
    kafka.consumer_lag.return_value = [PartitionLag("patients", 0, 0, 3, 3)]
    with pytest.raises(health.Unhealthy, match="3 message.s. wait in Kafka: writes are stalled"):
        health.fhir_progress(local_cfg, SINCE, lambda _c: client, kafka)


def test_data_freshness_is_skipped_locally_and_read_on_dataflow(local_cfg, dataflow_cfg, context):
    op = rendered(HealthCheckOperator(task_id="data_freshness", check="data_freshness", config=LOCAL), context)
    with (
        pytest.raises(AirflowSkipException, match="Dataflow metric"),
    ):
        op.execute(context)
    from k2f_airflow.hooks.jobs import DataflowJobsHook

    jobs = mock.create_autospec(DataflowJobsHook, instance=True)
    jobs.active_jobs.return_value = [JobInfo("df1", "k2f-unit", "RUNNING")]
    jobs.data_freshness_seconds.return_value = 900.0
    with pytest.raises(health.Unhealthy, match="df1 is 900 s"):
        health.data_freshness(dataflow_cfg, SINCE, jobs)
    jobs.data_freshness_seconds.assert_called_once_with("df1")


def test_an_unhealthy_check_fails_its_task(local_cfg, context):
    op = rendered(HealthCheckOperator(task_id="job_state", check="job_state", config=LOCAL), context)
    with (
        mock.patch.dict(health.CHECKS, {"job_state": mock.Mock(side_effect=health.Unhealthy("job not running"))}),
        pytest.raises(AirflowException, match="job_state: job not running"),
    ):
        op.execute(context)


def test_alerts_go_to_the_webhook_and_email(local_cfg):
    ti = mock.Mock(dag_id="k2f_health", task_id="job_state", run_id="r1", try_number=1, log_url="http://log")
    body = alert_body({"ti": ti, "exception": AirflowException("job_state: job k2f-unit is not running")})
    assert body["summary"] == "job_state: job k2f-unit is not running" and body["task_id"] == "job_state"
    post, email = mock.Mock(), mock.Mock()
    cfg = local_cfg.with_overrides({"alert_webhook_url": "http://hook.test/x", "alert_emails": "a@x.test, b@x.test"})
    assert send_alert(body, cfg, post=post, email=email) == ["webhook", "email"]
    post.assert_called_once_with("http://hook.test/x", json=body, timeout=10.0)
    assert email.call_args.args[0] == ["a@x.test", "b@x.test"]
    assert send_alert(body, local_cfg, post=post, email=email) == []


def test_the_retry_topic_is_checked_with_the_topics(local_cfg):
    kafka = mock.create_autospec(KafkaClient, instance=True)
    kafka.missing_topics.return_value = []
    retried = local_cfg.with_overrides({"reference_retry_topic": "patients-retry"})
    assert "patients-retry" in prerequisites.kafka_topics(retried, kafka)
    assert kafka.missing_topics.call_args.args[0] == [*local_cfg.topic_list, "patients-retry"]
    kafka.missing_topics.return_value = ["patients-retry"]
    with pytest.raises(prerequisites.PrerequisiteFailed, match="k2f.reference_retry_topic"):
        prerequisites.kafka_topics(retried, kafka)
