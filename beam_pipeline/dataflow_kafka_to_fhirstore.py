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
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from beam_pipeline.fhir_store import FhirStoreConfig
from beam_pipeline.kafka.connection import consumer_config, parse_kafka_secret
from beam_pipeline.kafka.secret_manager import access_secret
from beam_pipeline.options import KafkaToFhirOptions, normalize_argv
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.archive import ArchiveRaw
from beam_pipeline.transforms.dead_letter import DeadLetter
from beam_pipeline.transforms.parse_and_map import MappingSettings, MapToFhir, ParseAndValidate
from beam_pipeline.transforms.read import ReadFromKafka
from beam_pipeline.transforms.write import FAILED, WriteToFhirStore

log = logging.getLogger("kafka_to_fhir")


@dataclass(frozen=True)
class JobSettings:
    """What the steps need, resolved on the launcher (secrets read here, never on workers' logs)."""

    job_name: str
    archive_bucket: str
    error_bucket: str
    window_seconds: int
    fhir: FhirStoreConfig
    mapping: MappingSettings


def build_steps(messages: beam.PCollection[RawMessage], settings: JobSettings) -> dict[str, Any]:
    """Everything after the read, so tests can feed RawMessages without Kafka."""
    _ = messages | "ArchiveRaw" >> ArchiveRaw(settings.archive_bucket, settings.window_seconds)
    parsed = messages | "ParseAndValidate" >> ParseAndValidate(settings.mapping, settings.job_name)
    mapped = parsed.valid | "MapToFhir" >> MapToFhir(settings.mapping, settings.job_name)
    written = mapped.mapped | "WriteToFhirStore" >> WriteToFhirStore(settings.fhir, settings.job_name)
    failures = (parsed.invalid, mapped.failed, written[FAILED]) | "AllFailures" >> beam.Flatten()
    _ = failures | "DeadLetter" >> DeadLetter(settings.error_bucket, settings.window_seconds)
    return {"written": written.written, "failed": failures, "filtered": parsed.filtered}


def resolve_settings(options: PipelineOptions) -> tuple[JobSettings, dict[str, str], list[str]]:
    """Read the secrets and turn the flags into the steps' settings, the consumer config and the topics."""
    opts = options.view_as(KafkaToFhirOptions)
    job_name = options.view_as(GoogleCloudOptions).job_name or "kafka-to-fhir"
    connection = parse_kafka_secret(access_secret(opts.kafka_secret_resource_name))
    extra = dict(_key_value(p) for p in opts.kafka_consumer_property)
    consumer = consumer_config(connection, opts.kafka_consumer_group, extra)
    auth_secret = (
        json.loads(access_secret(opts.fhir_auth_secret_resource_name)) if opts.fhir_auth_secret_resource_name else None
    )
    fhir = FhirStoreConfig.from_flags(options.get_all_options(), auth_secret)
    settings = JobSettings(
        job_name=job_name,
        archive_bucket=opts.gcs_archive_bucket,
        error_bucket=opts.gcs_error_bucket,
        window_seconds=opts.archive_window_seconds,
        fhir=fhir,
        mapping=MappingSettings.from_options(opts),
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
    messages = pipeline | "ReadFromKafka" >> ReadFromKafka(consumer, topics, expansion_service)
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


def main(argv: list[str] | None = None) -> None:
    argv = normalize_argv(sys.argv[1:] if argv is None else argv)
    parser = help_parser()
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return
    known, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = PipelineOptions(argv)
    options.view_as(StandardOptions).streaming = True
    settings, consumer, topics = resolve_settings(options)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, settings, consumer, topics, known.expansion_service)
    result = pipeline.run()
    job_id = getattr(result, "job_id", None)
    job_id = job_id() if callable(job_id) else getattr(result, "_job_id", None)
    # One line for launchers (the Airflow operator) to read; the ids name no patient and no secret.
    print(json.dumps({"job_name": settings.job_name, "job_id": job_id, "state": str(result.state)}), flush=True)
    log.info("submitted job %s (%s)", settings.job_name, job_id)
    _ = beam_args


if __name__ == "__main__":
    main()
