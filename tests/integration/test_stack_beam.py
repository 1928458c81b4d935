"""The local runner is real: Prism runs Python steps on the EXTERNAL Python worker pool, and KafkaIO (the
cross-language ReadFromKafka that Dataflow runs) through the Java expansion service and Java worker pool."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import apache_beam as beam
import grpc
import pytest
from apache_beam.io.kafka import ReadFromKafka
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
from apache_beam.runners.runner import PipelineState
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from beam_pipeline.contracts.kafka_secret import parse_kafka_secret
from beam_pipeline.kafka.connection import consumer_config
from beam_pipeline.secret_manager import access_secret, secret_manager_client
from beam_pipeline.transforms import read as our_read
from launcher.local_stack_flags import local_expansion_service, local_runner_options

pytestmark = pytest.mark.integration

TIMEOUT_MS = 90_000


def _run(pipeline: beam.Pipeline) -> str:
    """Run to a final state; a job still running after the timeout is cancelled, not left on Prism."""
    result = pipeline.run()
    state = result.wait_until_finish(duration=TIMEOUT_MS)
    if not PipelineState.is_terminal(state):
        result.cancel()
    return state


def _produce(env: dict[str, str], topic: str, count: int = 10) -> list[dict[str, object]]:
    """`count` JSON messages on a new two-partition topic; what was sent, as the pipeline should see it."""
    conf = {"bootstrap.servers": env["KAFKA_BOOTSTRAP"]}
    admin = AdminClient(conf)  # kept alive until the future resolves
    admin.create_topics([NewTopic(topic, num_partitions=2)])[topic].result(timeout=30)
    producer = Producer(conf)
    sent = [{"key": f"k{i % 3}", "value": json.dumps({"n": i, "topic": topic})} for i in range(count)]
    for message in sent:
        producer.produce(topic, key=str(message["key"]).encode(), value=str(message["value"]).encode())
    assert producer.flush(30) == 0
    return sent


def _read_kafka_to_file(env: dict[str, str], consumer_config: dict[str, str], topic: str, out: Path) -> str:
    """Read exactly 10 records with their metadata into `out` (one JSON line each); the final job state."""
    pipeline = beam.Pipeline(options=PipelineOptions(local_runner_options(env)))
    _ = (
        pipeline
        | ReadFromKafka(
            consumer_config={**consumer_config, "auto.offset.reset": "earliest"},
            topics=[topic],
            with_metadata=True,
            max_num_records=10,  # makes the unbounded read bounded, so the job reaches DONE
            expansion_service=local_expansion_service(env),
        )
        | beam.Map(
            lambda r: json.dumps(
                {
                    "topic": r.topic,
                    "partition": r.partition,
                    "offset": r.offset,
                    "timestamp": r.timestamp,
                    "key": r.key.decode(),
                    "value": r.value.decode(),
                }
            )
        )
        | beam.io.WriteToText(str(out), shard_name_template="")
    )
    return _run(pipeline)


def _assert_read_exactly(out: Path, sent: list[dict[str, object]], topic: str) -> None:
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["key"], r["value"]) for r in records) == sorted((m["key"], m["value"]) for m in sent)
    assert {r["topic"] for r in records} == {topic}
    assert len({(r["partition"], r["offset"]) for r in records}) == len(sent)
    assert all(r["timestamp"] > 0 for r in records)


def test_the_local_expansion_service_expands_our_read_to_kafkaios_unbounded_reader(env):
    """KAFKA_READ_EXPERIMENT reaches KafkaIO through the expansion service's command line (it ignores the
    pipeline's experiments): the SDF read would hold each partition's records for its polling loop."""
    pipeline = beam.Pipeline(options=PipelineOptions(local_runner_options(env, streaming=True)))
    config = {"bootstrap.servers": env["KAFKA_BOOTSTRAP"], "group.id": "expansion-check"}
    _ = pipeline | "ReadFromKafka" >> our_read.ReadKafkaMessages(
        config, ["expansion-check"], local_expansion_service(env)
    )
    names = [t.unique_name for t in pipeline.to_runner_api().components.transforms.values()]
    assert any("ReadFromKafkaViaUnbounded" in n for n in names), "KafkaIO expanded to another read"
    assert not any("ReadFromKafkaViaSDF" in n for n in names)


def test_trivial_pipeline_runs_to_done_on_the_external_python_worker_pool(env, tmp_path):
    out = tmp_path / "upper.txt"
    pipeline = beam.Pipeline(options=PipelineOptions(local_runner_options(env)))
    _ = (
        pipeline
        | beam.Create(["a", "b", "c"])
        # The worker says where it ran: the pool's own process (not this one, as LOOPBACK would be).
        | beam.Map(lambda x: f"{x.upper()} {os.getpid()} {os.environ.get('K2F_WORKER_DIR', '-')}")
        | beam.io.WriteToText(str(out), shard_name_template="")
    )
    assert _run(pipeline) == PipelineState.DONE
    lines = [line.split() for line in out.read_text().splitlines()]
    assert sorted(word for word, _, _ in lines) == ["A", "B", "C"]
    assert all(int(pid) != os.getpid() and worker_dir.endswith("python_worker_pool") for _, pid, worker_dir in lines)


def test_read_from_kafka_reads_exactly_the_produced_messages(env, tmp_path):
    topic = f"beam-read-{uuid.uuid4().hex[:8]}"
    sent = _produce(env, topic)
    out = tmp_path / "records.jsonl"
    state = _read_kafka_to_file(env, {"bootstrap.servers": env["KAFKA_BOOTSTRAP"]}, topic, out)
    assert state == PipelineState.DONE
    _assert_read_exactly(out, sent, topic)


def test_read_from_kafka_through_the_sasl_listener(env, tmp_path):
    topic = f"beam-sasl-{uuid.uuid4().hex[:8]}"
    sent = _produce(env, topic)
    out = tmp_path / "records.jsonl"
    # KafkaIO takes Java client properties: what the Kafka secret's apiKey/apiSecret become (with SASL_SSL
    # on Confluent Cloud; SASL_PLAINTEXT locally).
    sasl = {
        "bootstrap.servers": env["KAFKA_SASL_BOOTSTRAP"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{env["KAFKA_SASL_USER"]}" password="{env["KAFKA_SASL_PASSWORD"]}";'
        ),
    }
    assert _read_kafka_to_file(env, sasl, topic, out) == PipelineState.DONE
    _assert_read_exactly(out, sent, topic)


def test_sasl_login_is_read_from_secret_manager_on_the_worker_not_carried_by_the_job(env, tmp_path):
    # What the launcher builds from the Kafka secret: the secret's name, never apiKey/apiSecret.
    name = env["KAFKA_SECRET_RESOURCE"]
    settings = consumer_config(parse_kafka_secret(access_secret(name)), f"g-{uuid.uuid4().hex[:8]}", name)
    assert env["KAFKA_SASL_PASSWORD"] not in json.dumps(settings)
    assert settings["sasl.jaas.config"] == f"${{k2fsm:{name}:sasl.jaas.config}}"
    topic = f"beam-sasl-sm-{uuid.uuid4().hex[:8]}"
    sent = _produce(env, topic)
    out = tmp_path / "records.jsonl"
    assert _read_kafka_to_file(env, settings, topic, out) == PipelineState.DONE
    _assert_read_exactly(out, sent, topic)


def test_a_wrong_login_in_secret_manager_fails_the_read(env, tmp_path):
    # The same settings naming a secret whose apiSecret is wrong: the worker's login comes from that secret.
    client = secret_manager_client()
    secret_id = f"kafka-wrong-{uuid.uuid4().hex[:8]}"
    secret = client.create_secret(parent=f"projects/{env['GCP_PROJECT']}", secret_id=secret_id, secret={})
    payload = {
        "bootstrap_servers": env["KAFKA_SASL_BOOTSTRAP"],
        "apiKey": env["KAFKA_SASL_USER"],
        "apiSecret": "not-the-password",
        "security_protocol": "SASL_PLAINTEXT",
    }
    client.add_secret_version(parent=secret.name, payload={"data": json.dumps(payload).encode()})
    name = f"{secret.name}/versions/latest"
    settings = consumer_config(parse_kafka_secret(access_secret(name)), "g-wrong", name)
    topic = f"beam-sasl-wrong-{uuid.uuid4().hex[:8]}"
    _produce(env, topic)
    with pytest.raises(RuntimeError, match="SaslAuthenticationException"):
        _read_kafka_to_file(env, settings, topic, tmp_path / "none.jsonl")


def test_streaming_read_runs_detached_until_cancelled_through_the_job_service(env, tmp_path):
    topic = f"beam-stream-{uuid.uuid4().hex[:8]}"
    job_name = f"k2f-test-{uuid.uuid4().hex[:8]}"
    sent = _produce(env, topic, count=5)
    out = tmp_path / "values.txt"

    def append(line: str) -> None:
        with open(out, "a") as f:
            f.write(line + "\n")

    options = PipelineOptions([*local_runner_options(env, streaming=True), f"--job_name={job_name}"])
    pipeline = beam.Pipeline(options=options)
    _ = (
        pipeline
        | ReadFromKafka(
            consumer_config={"bootstrap.servers": env["KAFKA_BOOTSTRAP"], "auto.offset.reset": "earliest"},
            topics=[topic],
            with_metadata=True,
            expansion_service=local_expansion_service(env),
        )
        | beam.Map(lambda r: r.value.decode())
        | beam.Map(append)
    )
    pipeline.run()  # returns once Prism accepted the job: nothing here waits for it

    channel = grpc.insecure_channel(env["PRISM_ENDPOINT"])
    jobs = beam_job_api_pb2_grpc.JobServiceStub(channel)

    def state_of(job_id: str) -> int:
        return jobs.GetState(beam_job_api_pb2.GetJobStateRequest(job_id=job_id), timeout=10).state

    # Python's PortableRunner names every job "job"; the --job_name is in the job's pipeline options.
    [job_id] = [
        j.job_id
        for j in jobs.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=10).job_info
        if j.pipeline_options.fields["beam:option:job_name:v1"].string_value == job_name
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (out.exists() and len(out.read_text().splitlines()) >= len(sent)):
            time.sleep(0.5)
        assert sorted(out.read_text().splitlines()) == sorted(str(m["value"]) for m in sent)
        assert state_of(job_id) == beam_job_api_pb2.JobState.RUNNING  # unbounded: waits for more

        jobs.Cancel(beam_job_api_pb2.CancelJobRequest(job_id=job_id), timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and state_of(job_id) != beam_job_api_pb2.JobState.CANCELLED:
            time.sleep(0.5)
        assert state_of(job_id) == beam_job_api_pb2.JobState.CANCELLED
    finally:
        if state_of(job_id) == beam_job_api_pb2.JobState.RUNNING:
            jobs.Cancel(beam_job_api_pb2.CancelJobRequest(job_id=job_id), timeout=10)
        channel.close()
