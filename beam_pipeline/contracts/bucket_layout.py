"""Where the pipeline's objects go in the archive and error buckets, and how a name is read back.

    <archive bucket>/archive/topic=T/date=D/<window>-pane-shard-<job>-<launch>.ndjson
    <error bucket>/errors/stage=S/topic=T/date=D/<window>-pane-shard-<job>-<launch>.ndjson
    <error bucket>/replayed/... and quarantine/...: the replay's twins of an errors/ object, same relative name
    <archive bucket>/control/job=J/drain.json: the local drain's request to job J (beam_pipeline/delivery)
    <error bucket>/reprocess/job=J/launch=L/summary.json: what reprocess job J, launched at L, did

The pipeline builds these paths (ArchiveRaw, DeadLetter) and the Airflow side lists and parses them
(health, replay): one definition for both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from beam_pipeline.contracts.error_record import ErrorRecord, utc_date

ARCHIVE_PREFIX = "archive"
ERRORS_PREFIX = "errors"
REPLAYED_PREFIX = "replayed"
QUARANTINE_PREFIX = "quarantine"
CONTROL_PREFIX = "control"
REPROCESS_PREFIX = "reprocess"
# The date partition of a message whose Kafka timestamp no calendar can name (year 10000, ...), and what a
# name without a partition key reads as.
UNKNOWN = "unknown"


def bucket_name(bucket: str) -> str:
    """`gs://name/` or `name` -> `name`: the settings accept either."""
    return bucket.removeprefix("gs://").strip("/")


def archive_partition(topic: str, date: str) -> str:
    """topic=T/date=D, the date of the Kafka message."""
    return f"topic={topic}/date={date}"


def archive_range_prefixes(topics: list[str], start_ms: int, end_ms: int) -> list[str]:
    """archive/topic=T/date=D/ for every topic and every UTC day that overlaps [start_ms, end_ms): the only
    objects that can hold a message of the range (its object is named by its Kafka timestamp's day)."""
    if end_ms <= start_ms:
        return []
    first = datetime.fromtimestamp(start_ms / 1000, UTC).date()
    last = datetime.fromtimestamp((end_ms - 1) / 1000, UTC).date()
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    return [f"{ARCHIVE_PREFIX}/{archive_partition(topic, day)}/" for topic in topics for day in days]


def error_partition(record: ErrorRecord) -> str:
    """stage=S/topic=T/date=D, the date of the Kafka message (of the failure when it has none)."""
    date = utc_date(record.source.timestamp_ms) or record.first_failure_time[:10] or UNKNOWN
    return f"stage={record.stage}/topic={record.source.topic}/date={date}"


def drain_marker_name(job_name: str) -> str:
    """The object a local drain writes to ask job `job_name` to stop taking messages."""
    return f"{CONTROL_PREFIX}/job={job_name}/drain.json"


def reprocess_summary_prefix(job_name: str) -> str:
    """Where the summaries of every launch of reprocess job `job_name` are."""
    return f"{REPROCESS_PREFIX}/job={job_name}/"


def reprocess_summary_name(job_name: str, launch_ms: int) -> str:
    """The summary a reprocess job writes when everything else it does is done (launch_ms: its launch time,
    so that a rerun under the same name never reads an earlier run's summary). Zero-padded: the newest
    launch sorts last."""
    return f"{reprocess_summary_prefix(job_name)}launch={launch_ms:015d}/summary.json"


def partition_value(name: str, key: str) -> str:
    """The value of `key=` in an object name, e.g. the stage of errors/stage=S/...; UNKNOWN without one."""
    for part in name.split("/"):
        if part.startswith(f"{key}="):
            return part.removeprefix(f"{key}=")
    return UNKNOWN


def twin_name(name: str, prefix: str, source_prefix: str = ERRORS_PREFIX) -> str:
    """errors/stage=S/... -> <prefix>/stage=S/...: the same relative name under another prefix."""
    head, sep, rest = name.partition("/")
    if not sep or head != source_prefix:
        raise ValueError(f"{name} is not under {source_prefix}/")
    return f"{prefix}/{rest}"
