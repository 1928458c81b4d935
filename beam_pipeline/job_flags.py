"""The pipeline's command-line flags: the one definition of contract 1 in docs/contracts.md.

Every flag of the original sample works unchanged; new flags extend, never rename. Beam's own flags
(--runner, --project, --region, --temp_location, --streaming, --max_num_workers, --save_main_session,
--requirements_file, --no_use_public_ips, ...) come from Beam's option classes; `--subnet`, which the
original command passes, is kept here as an alias of Beam's --subnetwork.
"""

from __future__ import annotations

from typing import Any

from apache_beam.options import pipeline_options as _beam_options
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.contracts.job_settings import DEFAULT_CONSUMER_GROUP
from beam_pipeline.contracts.reference_retry import DEFAULT_DELAYS as DEFAULT_RETRY_DELAYS
from beam_pipeline.fhir_store.config import AUTH_KINDS, WRITE_MODES
from beam_pipeline.kafka.connection import KAFKA_READ_EXPERIMENT
from beam_pipeline.us_core.config import add_mapping_flags


def _on_command_line(parser: object) -> bool:
    """Whether `parser` reads the job's command line (the launcher's) rather than being one of Beam's own.

    Beam parses every registered option class whenever any pipeline in the process runs, so a flag
    required there stops unrelated pipelines in the same process (tests, tools) with a SystemExit; the
    launcher's parser still requires it.
    """
    beam_parser = getattr(_beam_options, "_BeamArgumentParser", None)
    return beam_parser is None or not isinstance(parser, beam_parser)


def add_topics_flag(parser: Any, *, required: bool) -> None:  # noqa: ANN401  (an argparse parser or group)
    parser.add_argument(
        "--topics",
        required=required,
        help="Comma-separated Kafka topics, e.g. patients,patients-b: the streaming job reads them, a reprocess "
        "reads their archive.",
    )


def add_kafka_flags(parser: Any, *, required: bool) -> None:  # noqa: ANN401
    """The Kafka source: its topics, secret and consumer."""
    kafka = parser.add_argument_group("Kafka source")
    add_topics_flag(kafka, required=required)
    kafka.add_argument(
        "--kafka_secret_resource_name",
        required=required,
        help="Secret Manager version holding the Kafka connection JSON "
        '{"bootstrap_servers": ..., "apiKey": ..., "apiSecret": ...}, as '
        "projects/P/secrets/S/versions/V. apiKey/apiSecret mean SASL_SSL with PLAIN (Confluent Cloud).",
    )
    kafka.add_argument(
        "--kafka_consumer_group",
        default=DEFAULT_CONSUMER_GROUP,
        help="Kafka consumer group; the job commits its offsets once messages have settled (stored, "
        f"filtered or dead-lettered, and archived) and a new job starts there (default {DEFAULT_CONSUMER_GROUP}). "
        "Never run two streaming jobs on one group.",
    )
    kafka.add_argument(
        "--kafka_consumer_property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Extra Kafka consumer property, repeatable, e.g. --kafka_consumer_property max.poll.records=500.",
    )
    kafka.add_argument(
        "--reference_retry_topic",
        default="",
        help="Kafka topic the job retries a row through when what it refers to (its patient, encounter, "
        "organization...) is not in the store yet: the row waits there and is written again after each of "
        "--reference_retry_delays, then becomes a retryable reference_not_found error record. Give it one "
        "partition per delay. Default: no retry in the job (such rows go to the error bucket at once).",
    )
    kafka.add_argument(
        "--reference_retry_delays",
        default=DEFAULT_RETRY_DELAYS,
        help=f"Comma-separated seconds a row waits before each retry (default {DEFAULT_RETRY_DELAYS}: from 10 s "
        "to 10 min, about 19 min in all). After the last, the row is dead-lettered; these retries are not "
        "attempts of the replay DAG's count.",
    )
    kafka.add_argument(
        "--expansion_service",
        default=None,
        help="host:port of a running KafkaIO expansion service (the local stack's). Start it with "
        f"--experiments={KAFKA_READ_EXPERIMENT}, as the local stack does: without that KafkaIO keeps each "
        "message up to 2 s longer. Without this flag the job starts Beam's own, with that experiment.",
    )


def add_fhir_store_flags(parser: Any) -> None:  # noqa: ANN401
    """Where and how the resources are written, and the mapping that makes them."""
    hcapi = parser.add_argument_group("FHIR store: Google Cloud Healthcare API (the original sample's flags)")
    hcapi.add_argument("--hcapi_project_id", help="Project of the Healthcare API dataset.")
    hcapi.add_argument("--hcapi_location", help="Location (region) of the dataset, e.g. us-central1.")
    hcapi.add_argument("--hcapi_dataset", help="Healthcare API dataset name.")
    hcapi.add_argument("--hcapi_version", default="v1", help="Healthcare API version (default v1).")
    hcapi.add_argument("--hcapi_get_fhir_store", help="FHIR store read for searches (reference resolution, checks).")
    hcapi.add_argument("--hcapi_post_fhir_store", help="FHIR store the resources are written to.")

    fhir = parser.add_argument_group("FHIR store: any FHIR R4 server (instead of the Healthcare API)")
    fhir.add_argument(
        "--fhir_base_url",
        help="Base URL of a FHIR R4 server, e.g. http://127.0.0.1:8080/fhir. Overrides the --hcapi_* store.",
    )
    fhir.add_argument(
        "--fhir_auth",
        choices=AUTH_KINDS,
        default=None,
        help="Authentication to the FHIR server: google (Application Default Credentials; the default for "
        "the Healthcare API), none (the default for --fhir_base_url), bearer, basic or oauth2 (client "
        "credentials).",
    )
    fhir.add_argument(
        "--fhir_auth_secret_resource_name",
        help="Secret Manager version with the credentials for bearer/basic/oauth2 as JSON: "
        '{"token"} or {"username", "password"} or {"token_url", "client_id", "client_secret", "scope"}.',
    )

    write = parser.add_argument_group("Writing")
    write.add_argument(
        "--write_mode",
        choices=WRITE_MODES,
        default="upsert",
        help="upsert: conditional update on the business identifier, so a redelivered or replayed message "
        "updates the same resource (default); conditional_create: If-None-Exist, never overwrites; "
        "create: plain POST, one new resource per message (the original sample's behaviour).",
    )
    write.add_argument("--bundle_size", type=int, default=200, help="Resources per FHIR batch bundle (default 200).")
    write.add_argument(
        "--max_bundles_in_flight",
        type=int,
        default=4,
        help="Batch bundles sent concurrently by one worker thread's client (default 4).",
    )
    add_mapping_flags(parser.add_argument_group("Mapping and business filters"))


def add_storage_flags(parser: Any, *, required: bool) -> None:  # noqa: ANN401
    """The archive and error buckets."""
    storage = parser.add_argument_group("Archive and errors")
    storage.add_argument(
        "--gcs_archive_bucket",
        required=required,
        help="Bucket (name or gs://name) that receives every consumed raw message as windowed NDJSON.",
    )
    storage.add_argument(
        "--gcs_error_bucket",
        required=required,
        help="Bucket (name or gs://name) that receives an error record for every failed message.",
    )
    storage.add_argument(
        "--archive_window_seconds",
        type=int,
        default=60,
        help="Length of the fixed windows that group archive and error files (default 60).",
    )


class KafkaToFhirOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser) -> None:  # noqa: ANN001  (Beam's own parser type)
        required = _on_command_line(parser)
        add_kafka_flags(parser, required=required)
        add_fhir_store_flags(parser)
        add_storage_flags(parser, required=required)


def add_reprocess_flags(parser: Any) -> None:  # noqa: ANN401
    """The reprocess's own flags (python -m beam_pipeline.reprocess). Never Beam options: Beam's parser would
    read --dry_run as its TestOptions flag, with which DataflowRunner submits nothing."""
    source = parser.add_argument_group("Reprocess: what to read (the archive by --topics and a range, or files)")
    source.add_argument(
        "--from",
        dest="reprocess_from",
        metavar="TIME",
        help="Start of the [from, to) range of Kafka timestamps to reprocess from the archive, ISO 8601 in UTC, "
        "e.g. 2026-01-01 or 2026-01-01T06:00:00Z (a time without a zone is UTC).",
    )
    source.add_argument(
        "--to",
        dest="reprocess_to",
        metavar="TIME",
        help="End of the range, exclusive, in the same form as --from.",
    )
    source.add_argument(
        "--input_pattern",
        help="Instead of the archive: raw message files (NDJSON, one raw message a line), a local or gs:// path "
        "or glob, e.g. gs://bucket/history/*.ndjson. Their messages take the single topic of --topics if given.",
    )
    source.add_argument(
        "--detach",
        action="store_true",
        help="Return once the runner has accepted the job, printing its name and id (what the k2f_reprocess "
        "DAG does: it then waits on the triggerer and reports from the job's counters); by default the "
        "command waits for the job to end and prints its summary.",
    )
    source.add_argument(
        "--dry_run",
        action="store_true",
        help="Parse and map only: count what would be written (per resource type) and what would fail (per "
        "stage and code); write nothing to the FHIR store or the error bucket.",
    )


# Flags of the original sample that Beam spells differently.
_ALIASES = {"--subnet": "--subnetwork"}


def normalize_argv(argv: list[str]) -> list[str]:
    """The command line with the original sample's aliases rewritten to Beam's own flag names."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append(_ALIASES.get(name, name) + eq + value if name in _ALIASES else arg)
    return out
