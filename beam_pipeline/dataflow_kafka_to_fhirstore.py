"""The streaming job: Kafka -> US Core resources -> FHIR store, with the raw archive and dead letters.

    python -m beam_pipeline.dataflow_kafka_to_fhirstore --help

Takes every flag of the original sample unchanged (beam_pipeline/options.py). On DataflowRunner the
launcher submits the job and returns; on the local stack (--runner=PortableRunner --job_endpoint=...)
it returns once the job service accepted the job. Either way it prints one JSON line with the job id.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (the Beam operator's py_file): make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import (  # noqa: E402
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
)

from beam_pipeline.fhir_store import FhirStoreConfig  # noqa: E402
from beam_pipeline.kafka.connection import KafkaSecretError, consumer_config, parse_kafka_secret  # noqa: E402
from beam_pipeline.kafka.secret_manager import access_secret  # noqa: E402
from beam_pipeline.options import KafkaToFhirOptions, normalize_argv  # noqa: E402
from beam_pipeline.raw_message import RawMessage  # noqa: E402
from beam_pipeline.transforms.archive import ArchiveRaw  # noqa: E402
from beam_pipeline.transforms.dead_letter import DeadLetter  # noqa: E402
from beam_pipeline.transforms.parse_and_map import MappingSettings, MapToFhir, ParseAndValidate  # noqa: E402
from beam_pipeline.transforms.read import ReadFromKafka  # noqa: E402
from beam_pipeline.transforms.write import FAILED, WRITTEN, WriteToFhirStore  # noqa: E402

log = logging.getLogger("kafka_to_fhir")
DEFAULT_JOB_NAME = "kafka-to-fhir"


@dataclass(frozen=True)
class JobSettings:
    """What the steps need, resolved on the launcher (secrets read here, never on workers' logs)."""

    job_name: str
    archive_bucket: str
    error_bucket: str
    window_seconds: int
    fhir: FhirStoreConfig
    mapping: MappingSettings
    kafka_poll_timeout_seconds: int = 1


def build_steps(messages: beam.PCollection[RawMessage], settings: JobSettings) -> dict[str, Any]:
    """Everything after the read, so tests can feed RawMessages without Kafka."""
    _ = messages | "ArchiveRaw" >> ArchiveRaw(
        settings.archive_bucket, settings.window_seconds, job_name=settings.job_name
    )
    parsed = messages | "ParseAndValidate" >> ParseAndValidate(settings.mapping, settings.job_name)
    mapped = parsed.valid | "MapToFhir" >> MapToFhir(settings.mapping, settings.job_name)
    written = mapped.mapped | "WriteToFhirStore" >> WriteToFhirStore(settings.fhir, settings.job_name)
    failures = (parsed.invalid, mapped.failed, written[FAILED]) | "AllFailures" >> beam.Flatten()
    _ = failures | "DeadLetter" >> DeadLetter(
        settings.error_bucket, settings.window_seconds, job_name=settings.job_name
    )
    return {"written": written[WRITTEN], "failed": failures, "filtered": parsed.filtered}


def resolve_settings(options: PipelineOptions) -> tuple[JobSettings, dict[str, str], list[str]]:
    """Read the secrets and turn the flags into the steps' settings, the consumer config and the topics."""
    opts = options.view_as(KafkaToFhirOptions)
    job_name = options.view_as(GoogleCloudOptions).job_name or DEFAULT_JOB_NAME
    connection = parse_kafka_secret(access_secret(opts.kafka_secret_resource_name))
    extra = dict(_key_value(p) for p in opts.kafka_consumer_property)
    consumer = consumer_config(connection, opts.kafka_consumer_group, opts.kafka_secret_resource_name, extra)
    # The FHIR config names the auth secret and holds no credential: workers read it in setup(). It is read
    # here once only so that a missing or malformed secret stops the launch with a message.
    fhir = FhirStoreConfig.from_flags(options.get_all_options())
    fhir.resolve_secret(access_secret)
    settings = JobSettings(
        job_name=job_name,
        archive_bucket=opts.gcs_archive_bucket,
        error_bucket=opts.gcs_error_bucket,
        window_seconds=opts.archive_window_seconds,
        fhir=fhir,
        mapping=MappingSettings.from_options(opts),
        kafka_poll_timeout_seconds=opts.kafka_poll_timeout_seconds,
    )
    topics = [t.strip() for t in opts.topics.split(",") if t.strip()]
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
    read = ReadFromKafka(consumer, topics, expansion_service, poll_timeout_seconds=settings.kafka_poll_timeout_seconds)
    messages = pipeline | "ReadFromKafka" >> read
    return build_steps(messages, settings)


def help_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m beam_pipeline.dataflow_kafka_to_fhirstore",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Beam's own flags also apply: --runner, --project, --region, --temp_location, --streaming, "
        "--max_num_workers, --no_use_public_ips, --subnet (alias of --subnetwork), --save_main_session, "
        "--requirements_file, --setup_file, --job_name, and for the local stack --job_endpoint, "
        "--environment_type, --environment_config. --expansion_service names a running KafkaIO expansion "
        "service (the local stack's); without it Beam starts its default one.",
    )
    KafkaToFhirOptions._add_argparse_args(parser)  # noqa: SLF001  (Beam's documented extension point)
    parser.add_argument("--expansion_service", help="host:port of a running KafkaIO expansion service.")
    return parser


SETUP_FILE = Path(__file__).resolve().parent.parent / "setup.py"


def pipeline_argv(argv: list[str], expansion_service: str | None) -> list[str]:
    """The flags Beam parses: ours and Beam's, without the launcher-only --expansion_service."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--expansion_service":
            skip = True
            continue
        if arg.startswith("--expansion_service="):
            continue
        out.append(arg)
    if not any(a == "--job_name" or a.startswith("--job_name=") for a in out):
        # A stable default name: the launch DAG's "no job of this name is running" check depends on it.
        out.append(f"--job_name={DEFAULT_JOB_NAME}")
    runner = PipelineOptions(out).view_as(StandardOptions).runner or ""
    setup = PipelineOptions(out).get_all_options().get("setup_file")
    if runner.endswith("DataflowRunner") and not setup and SETUP_FILE.exists():
        # Workers import beam_pipeline.*; Dataflow ships it as the package this setup.py builds.
        out.append(f"--setup_file={SETUP_FILE}")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = normalize_argv(sys.argv[1:] if argv is None else argv)
    parser = help_parser()
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return 0
    known, _ = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = PipelineOptions(pipeline_argv(argv, known.expansion_service))
    options.view_as(StandardOptions).streaming = True
    try:
        settings, consumer, topics = resolve_settings(options)
    except (KafkaSecretError, ValueError) as exc:
        # Messages name the flag or secret field to fix; they never carry a secret's value.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, settings, consumer, topics, known.expansion_service)
    result = pipeline.run()
    template = options.get_all_options().get("template_location")
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
