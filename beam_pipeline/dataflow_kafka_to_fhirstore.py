"""The streaming job: Kafka -> US Core resources -> FHIR store, with the raw archive and dead letters.

    python -m beam_pipeline.dataflow_kafka_to_fhirstore --help

Takes every flag of the original sample unchanged (beam_pipeline/job_flags.py). On DataflowRunner the
launcher submits the job and returns; on the local stack (--runner=PortableRunner --job_endpoint=...)
it returns once the job service accepted the job. Either way it prints one JSON line with the job id.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (the Beam operator's py_file): make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apache_beam as beam  # noqa: E402
from apache_beam import pvalue  # noqa: E402
from apache_beam.options.pipeline_options import (  # noqa: E402
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
)

from beam_pipeline.contracts.error_record import ErrorRecord  # noqa: E402
from beam_pipeline.contracts.job_settings import DEFAULT_JOB_NAME, comma_list  # noqa: E402
from beam_pipeline.contracts.kafka_secret import KafkaSecretError, parse_kafka_secret  # noqa: E402
from beam_pipeline.contracts.reference_retry import DEFAULT_DELAYS as DEFAULT_RETRY_DELAYS  # noqa: E402
from beam_pipeline.contracts.reference_retry import RetrySchedule  # noqa: E402
from beam_pipeline.delivery.committer import OffsetCommitter  # noqa: E402
from beam_pipeline.delivery.drain_signal import DrainSignal  # noqa: E402
from beam_pipeline.fhir_store import FhirStoreConfig  # noqa: E402
from beam_pipeline.job_flags import KafkaToFhirOptions, normalize_argv  # noqa: E402
from beam_pipeline.kafka.connection import consumer_config  # noqa: E402
from beam_pipeline.mapping.mapping_set import compiled  # noqa: E402
from beam_pipeline.raw_message import RawMessage  # noqa: E402
from beam_pipeline.secret_manager import access_secret  # noqa: E402
from beam_pipeline.transforms.archive import ArchiveRaw  # noqa: E402
from beam_pipeline.transforms.commit_offsets import CommitOffsets  # noqa: E402
from beam_pipeline.transforms.dead_letter import DeadLetter  # noqa: E402
from beam_pipeline.transforms.parse_and_map import MapToFhir, ParseAndValidate  # noqa: E402
from beam_pipeline.transforms.read import ReadKafkaMessages  # noqa: E402
from beam_pipeline.transforms.reference_retry import (  # noqa: E402
    AwaitRetryDue,
    KafkaProducerFactory,
    RetryUnresolvedReferences,
)
from beam_pipeline.transforms.windowed_files import default_storage_client  # noqa: E402
from beam_pipeline.transforms.write import WriteToFhirStore  # noqa: E402
from beam_pipeline.us_core import TransformConfig  # noqa: E402
from beam_pipeline.us_core.config import config_from_flags  # noqa: E402

log = logging.getLogger("kafka_to_fhir")


@dataclass(frozen=True)
class JobSettings:
    """What the steps need, resolved on the launcher (secrets read here, never on workers' logs)."""

    job_name: str
    archive_bucket: str
    error_bucket: str
    window_seconds: int
    fhir: FhirStoreConfig
    mapping: TransformConfig
    # Whose offsets the job commits once messages settle (the secret's name only, read on the workers).
    kafka_secret_resource_name: str = ""
    consumer_group: str = ""
    # The archive's and error bucket's storage client (a module-level function, pickled into the graph):
    # tests hand in an in-memory one.
    storage_client: Callable[[], Any] = default_storage_client
    # The job's own retry of rows whose reference target has not arrived (off without a topic), and the
    # producer that publishes to it (tests hand in their own).
    retry_topic: str = ""
    retry_schedule: RetrySchedule = field(default_factory=lambda: RetrySchedule.parse(DEFAULT_RETRY_DELAYS))
    retry_producer: Callable[[], Any] | None = None


def parse_and_map(
    messages: beam.PCollection[RawMessage], settings: JobSettings
) -> tuple[pvalue.DoOutputsTuple, pvalue.DoOutputsTuple]:
    """ParseAndValidate then MapToFhir: what a dry run stops after."""
    parsed = messages | "ParseAndValidate" >> ParseAndValidate(settings.mapping, settings.job_name)
    mapped = parsed.valid | "MapToFhir" >> MapToFhir(settings.mapping, settings.job_name)
    return parsed, mapped


def process_steps(
    messages: beam.PCollection[RawMessage],
    settings: JobSettings,
    extra_failures: Sequence[beam.PCollection[ErrorRecord]] = (),
    *,
    spread: bool = True,
) -> dict[str, Any]:
    """The steps every source feeds (Kafka, or a reprocess's bounded read): parse, map, write, dead-letter.
    `extra_failures` are the source's own error records, dead-lettered beside the steps'. `spread=False`
    leaves out the write step's Reshuffle, for a source whose messages come out of a shuffle already. Returns each
    outcome, the messages dead-lettered ("dead_lettered") once their records are written, those sent to the
    retry topic ("deferred", None without one) and the write step's tally ("write_tally", transforms/tally.py)."""
    parsed, mapped = parse_and_map(messages, settings)
    write_order = compiled(settings.mapping.mappings).write_order
    written = mapped.mapped | "WriteToFhirStore" >> WriteToFhirStore(
        settings.fhir, settings.job_name, write_order=write_order, spread=spread
    )
    failures = (parsed.invalid, mapped.failed, written.failed, *extra_failures) | "AllFailures" >> beam.Flatten()
    deferred = None
    if settings.retry_topic:
        producer = settings.retry_producer or KafkaProducerFactory(settings.kafka_secret_resource_name)
        retry = failures | "RetryUnresolvedReferences" >> RetryUnresolvedReferences(
            settings.retry_topic, settings.retry_schedule, producer
        )
        failures, deferred = retry.failed, retry.deferred
    dead_lettered = failures | "DeadLetter" >> DeadLetter(
        settings.error_bucket, settings.window_seconds, settings.storage_client, job_name=settings.job_name
    )
    return {
        "written": written.written,
        "failed": failures,
        "filtered": parsed.filtered,
        "dead_lettered": dead_lettered,
        "deferred": deferred,
        "write_tally": written.tally,
    }


def build_steps(messages: beam.PCollection[RawMessage], settings: JobSettings) -> dict[str, Any]:
    """Everything after the Kafka read, so tests can feed RawMessages without Kafka: the archive, then
    process_steps. Returns process_steps' outcomes and the messages archived ("archived")."""
    archived = messages | "ArchiveRaw" >> ArchiveRaw(
        settings.archive_bucket, settings.window_seconds, settings.storage_client, job_name=settings.job_name
    )
    return {**process_steps(messages, settings), "archived": archived}


def step_settings(options: PipelineOptions) -> JobSettings:
    """The steps' settings from the flags, without the Kafka source's (what a reprocess needs)."""
    opts = options.view_as(KafkaToFhirOptions)
    # The FHIR config names the auth secret and holds no credential: workers read it in setup(). It is read
    # here once only so that a missing or malformed secret stops the launch with a message.
    fhir = FhirStoreConfig.from_flags(options.get_all_options())
    fhir.resolve_secret(access_secret)
    return JobSettings(
        job_name=options.view_as(GoogleCloudOptions).job_name,
        archive_bucket=opts.gcs_archive_bucket or "",
        error_bucket=opts.gcs_error_bucket or "",
        window_seconds=opts.archive_window_seconds,
        fhir=fhir,
        mapping=config_from_flags(opts),
    )


def resolve_settings(options: PipelineOptions) -> tuple[JobSettings, dict[str, str], list[str]]:
    """Read the secrets and turn the flags into the steps' settings, the consumer config and the topics."""
    opts = options.view_as(KafkaToFhirOptions)
    connection = parse_kafka_secret(access_secret(opts.kafka_secret_resource_name))
    extra = dict(_key_value(p) for p in opts.kafka_consumer_property)
    consumer = consumer_config(connection, opts.kafka_consumer_group, opts.kafka_secret_resource_name, extra)
    settings = replace(
        step_settings(options),
        kafka_secret_resource_name=opts.kafka_secret_resource_name,
        consumer_group=consumer["group.id"],
        retry_topic=(opts.reference_retry_topic or "").strip(),
        retry_schedule=RetrySchedule.parse(opts.reference_retry_delays),
    )
    topics = comma_list(opts.topics)
    if settings.retry_topic in topics:
        raise ValueError("--reference_retry_topic must not be one of --topics: the job reads it apart")
    return settings, consumer, topics


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError("--kafka_consumer_property takes KEY=VALUE")
    return key.strip(), value.strip()


def build_pipeline(
    pipeline: beam.Pipeline,
    settings: JobSettings,
    consumer: dict[str, str],
    topics: list[str],
    expansion_service: str | None = None,
) -> dict[str, Any]:
    # Drawn when the job is built: only a drain asked for after this stops it (not its predecessor's).
    drain = DrainSignal(settings.archive_bucket, settings.job_name, int(time.time() * 1000), default_storage_client)
    # The label is the step name dashboards and the graph tests look for.
    messages = pipeline | "ReadFromKafka" >> ReadKafkaMessages(consumer, topics, expansion_service, drain=drain)
    if settings.retry_topic:
        # Its own read: a message waiting for its time there never holds back one from the main topics.
        retried = (
            pipeline
            | "ReadRetryTopic" >> ReadKafkaMessages(consumer, [settings.retry_topic], expansion_service, drain=drain)
            | "AwaitRetryDue" >> AwaitRetryDue(drain)
        )
        messages = (messages, retried) | "WithRetries" >> beam.Flatten()
    steps = build_steps(messages, settings)
    settled = {
        "read": messages,
        "archived": steps["archived"],
        "stored": steps["written"],
        "filtered": steps["filtered"],
        "dead_lettered": steps["dead_lettered"],
    }
    if steps["deferred"] is not None:
        settled["deferred"] = steps["deferred"]
    committer = OffsetCommitter(settings.kafka_secret_resource_name, settings.consumer_group)
    _ = settled | "CommitOffsets" >> CommitOffsets(committer, drain, settings.job_name)
    return steps


def help_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m beam_pipeline.dataflow_kafka_to_fhirstore",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Beam's own flags also apply: --runner, --project, --region, --temp_location, --streaming, "
        "--max_num_workers, --no_use_public_ips, --subnet (alias of --subnetwork), --save_main_session, "
        "--requirements_file, --setup_file, --job_name, and for the local stack --job_endpoint, "
        "--environment_type, --environment_config.",
    )
    KafkaToFhirOptions._add_argparse_args(parser)  # noqa: SLF001  (Beam's documented extension point)
    return parser


SETUP_FILE = Path(__file__).resolve().parent.parent / "setup.py"


def launch_options(
    argv: list[str], *, streaming: bool = True, default_job_name: str = DEFAULT_JOB_NAME
) -> PipelineOptions:
    """The job's options, parsed once, with what the launcher adds: streaming (the Kafka job) or batch (a
    reprocess), a stable job name and, on Dataflow, the setup.py that ships beam_pipeline to the workers."""
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    standard.streaming = streaming
    cloud = options.view_as(GoogleCloudOptions)
    if not cloud.job_name:
        # The DAGs' "no job of this name is running" checks depend on a stable default.
        cloud.job_name = default_job_name
    setup = options.view_as(SetupOptions)
    if (standard.runner or "").endswith("DataflowRunner") and not setup.setup_file and SETUP_FILE.exists():
        # Workers import beam_pipeline.*; Dataflow ships it as the package this setup.py builds.
        setup.setup_file = str(SETUP_FILE)
    return options


def main(argv: list[str] | None = None) -> int:
    argv = normalize_argv(sys.argv[1:] if argv is None else argv)
    parser = help_parser()
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return 0
    parser.parse_known_args(argv)  # a missing required flag stops here, with the usage
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = launch_options(argv)
    try:
        settings, consumer, topics = resolve_settings(options)
    except (KafkaSecretError, ValueError) as exc:
        # Messages name the flag or secret field to fix; they never carry a secret's value.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, settings, consumer, topics, options.view_as(KafkaToFhirOptions).expansion_service)
    result = pipeline.run()
    template = options.view_as(GoogleCloudOptions).template_location
    if template:
        # A classic template: the job graph is written, nothing is submitted.
        print(json.dumps({"job_name": settings.job_name, "template_location": template}), flush=True)
        return 0
    job_id = getattr(result, "job_id", None)
    job_id = job_id() if callable(job_id) else getattr(result, "_job_id", None)
    # One line for launchers (the Airflow operator) to read; the ids name no patient and no secret.
    print(json.dumps({"job_name": settings.job_name, "job_id": job_id, "state": str(result.state)}), flush=True)
    log.info("submitted job %s (%s)", settings.job_name, job_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
