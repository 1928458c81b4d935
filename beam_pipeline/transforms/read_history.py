"""read_archive and read_raw_files (the graph's ReadArchive and ReadRawFiles steps): a reprocess's bounded
sources, RawMessages as ReadFromKafka gives them.

read_archive reads the archive bucket's NDJSON (contracts/archive_line.py) for some topics and a [from, to)
range of Kafka timestamps: it lists only the objects under archive/topic=T/date=D/ for the days of the
range, then keeps the lines whose timestamp is in it, once per Kafka coordinates (the archive is at least
once). read_raw_files reads files of raw messages, one a line. Each message keeps the coordinates and
timestamp it had (for a file line: its file and line), so the guarded write never lets it overwrite a
resource a later message wrote. A line or object that cannot be read is an error record (stage
`reprocess`), never a failed job: its detail names the object, the line number and the rule, never content.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import IO, Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows, TimestampCombiner, TimestampedValue

from beam_pipeline.contracts.archive_line import CorruptArchiveLine
from beam_pipeline.contracts.bucket_layout import UNKNOWN, archive_range_prefixes, partition_value
from beam_pipeline.contracts.error_record import MAX_PARTITION, ErrorRecord, KafkaCoordinates, make_error_record
from beam_pipeline.contracts.outcome import CORRUPT_ARCHIVE_LINE, REPROCESS, UNREADABLE_OBJECT
from beam_pipeline.contracts.reprocess_summary import NAMESPACE
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.outputs import FAILED, TALLY
from beam_pipeline.transforms.tally import Tally
from beam_pipeline.transforms.windowed_files import default_storage_client

GS = "gs://"
MESSAGES = "messages"
# The topic of raw file lines when --topics names none (their error records go under it).
RAW_FILES_TOPIC = "raw-files"
# How much of an object is read at a time. Iterating google-cloud-storage's BlobReader line by line reads
# it a byte at a time through Python (readline over read(1)): 20,000 archived lines took 6 s of CPU.
READ_CHUNK_BYTES = 1 << 20


def counter(name: str) -> Any:  # noqa: ANN401  (a Beam metrics counter)
    """A reprocess counter: the job's progress, and what its summary is made of."""
    return beam.metrics.Metrics.counter(NAMESPACE, name)


def source_error(
    topic: str, path: str, line_number: int | None, code: str, detail: str, raw: bytes, job_name: str
) -> ErrorRecord:
    """The error record of a line or object a reprocess could not read. Its id is the object's name and the
    line's number: no Kafka coordinates are known, and records of two lines must not share one."""
    record = make_error_record(
        stage=REPROCESS,
        code=code,
        # Replaying the bytes cannot help; the remedy is to repair the object and reprocess again.
        retryable=False,
        detail=detail,
        raw=raw,
        source=KafkaCoordinates(topic),
        job_name=job_name,
    )
    ident = f"{REPROCESS}|{path}|{line_number}"
    return replace(record, record_id=hashlib.sha256(ident.encode()).hexdigest()[:24])


def lines_of(handle: IO[bytes], chunk_bytes: int = READ_CHUNK_BYTES) -> Iterable[bytes]:
    """The lines of a binary stream, each without its line ending ("\\n" or "\\r\\n"), read `chunk_bytes` at a
    time; the last line may lack its "\\n". A line longer than a chunk is joined once, not chunk by chunk."""
    pending: list[bytes] = []
    while chunk := handle.read(chunk_bytes):
        pending.append(chunk)
        if b"\n" not in chunk:
            continue
        lines = b"".join(pending).split(b"\n")
        pending = [lines.pop()]
        for line in lines:
            yield line.removesuffix(b"\r")
    if rest := b"".join(pending):
        yield rest.removesuffix(b"\r")


def file_partition(path: str) -> int:
    """The Kafka partition a raw file's lines stand in: a stable hash of its path, so every line of every
    file has its own coordinates (and error record id)."""
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=4).digest(), "big") % (MAX_PARTITION + 1)


@dataclass(frozen=True)
class LineReading:
    """How a source's lines become messages: `decode` (path, line number, line) -> RawMessage, raising
    CorruptArchiveLine; `topic_of` a path -> the topic its error records go under; `keep` whether a message
    is in range. Every element gets the event time `at_s` (the launch): the dead-letter files' window."""

    decode: Callable[[str, int, bytes], RawMessage]
    topic_of: Callable[[str], str]
    keep: Callable[[RawMessage], bool]
    job_name: str
    at_s: float
    # gs:// objects are listed and read with this client (google-cloud-storage, as the archive writes them):
    # Beam's own GCS filesystem first retries Application Default Credentials for about 20 s where there are
    # none (the local emulator). Local paths go through Beam's FileSystems.
    storage_client: Callable[[], Any] = default_storage_client

    def match(self, pattern: str, client: _LazyClient) -> list[str]:
        """The objects a glob names; for gs://, `*` and `?` also match "/" (the archive's globs end in one
        folder)."""
        if not pattern.startswith(GS):
            return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
        bucket, _, glob = pattern.removeprefix(GS).partition("/")
        prefix = re.split(r"[*?\[]", glob, maxsplit=1)[0]
        blobs = client.get().list_blobs(bucket, prefix=prefix)
        return [f"{GS}{bucket}/{b.name}" for b in blobs if fnmatch.fnmatchcase(b.name, glob)]

    def open(self, path: str, client: _LazyClient) -> IO[bytes]:
        if not path.startswith(GS):
            return FileSystems.open(path)
        bucket, _, name = path.removeprefix(GS).partition("/")
        return client.get().bucket(bucket).blob(name).open("rb")

    def failure(self, path: str, line_number: int | None, code: str, detail: str, raw: bytes) -> Any:  # noqa: ANN401
        counter(f"failed.{code}").inc()
        record = source_error(self.topic_of(path), path, line_number, code, detail, raw, self.job_name)
        return pvalue.TaggedOutput(FAILED, TimestampedValue(record, self.at_s))


class _LazyClient:
    """The storage client, made on first use: a job over local files never needs one."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None

    def get(self) -> Any:  # noqa: ANN401  (a google.cloud.storage Client)
        if self._client is None:
            self._client = self._factory()
        return self._client


class _MatchFn(beam.DoFn):
    """A glob -> the path of every object it matches. A glob that cannot be listed is an error record."""

    def __init__(self, reading: LineReading) -> None:
        self._reading = reading

    def setup(self) -> None:
        self._client = _LazyClient(self._reading.storage_client)

    def process(self, pattern: str) -> Iterable[Any]:
        try:
            matched = self._reading.match(pattern, self._client)
        except Exception as exc:  # noqa: BLE001  (one unlistable prefix must not fail the others)
            detail = f"{pattern} could not be listed ({type(exc).__name__})"
            yield self._reading.failure(pattern, None, UNREADABLE_OBJECT, detail, b"")
            return
        for path in matched:
            counter("objects_listed").inc()
            yield path


class _ReadLinesFn(beam.DoFn):
    """An object's path -> a RawMessage per line, or an error record per line it cannot read and one for
    the object when reading it fails."""

    def __init__(self, reading: LineReading) -> None:
        self._reading = reading

    def setup(self) -> None:
        self._client = _LazyClient(self._reading.storage_client)
        self._tally = Tally(NAMESPACE)

    def process(self, path: str) -> Iterable[Any]:
        yield from self._object(path)
        for pair in self._tally.take():
            yield pvalue.TaggedOutput(TALLY, pair)

    def _object(self, path: str) -> Iterable[Any]:
        line_number = 0
        try:
            with self._reading.open(path, self._client) as handle:
                for line_number, line in enumerate(lines_of(handle), start=1):
                    yield from self._line(path, line_number, line)
        except Exception as exc:  # noqa: BLE001  (an unreadable object is an error record, the job goes on)
            detail = f"{path} could not be read after {line_number} lines ({type(exc).__name__})"
            yield self._reading.failure(path, None, UNREADABLE_OBJECT, detail, b"")
            return
        self._tally.inc("objects_read")

    def _line(self, path: str, line_number: int, line: bytes) -> Iterable[Any]:
        if not line.strip():
            return
        self._tally.inc("lines_read")
        try:
            message = self._reading.decode(path, line_number, line)
        except CorruptArchiveLine as exc:
            # The rule the line broke (CorruptArchiveLine names a field, never a value), and where it is.
            detail = f"line {line_number} of {path}: {exc}"
            yield self._reading.failure(path, line_number, CORRUPT_ARCHIVE_LINE, detail, line)
            return
        except Exception as exc:  # noqa: BLE001  (one odd line must not cost the object's later lines)
            detail = f"line {line_number} of {path}: not read ({type(exc).__name__})"
            yield self._reading.failure(path, line_number, CORRUPT_ARCHIVE_LINE, detail, line)
            return
        if not self._reading.keep(message):
            self._tally.inc("outside_range")
            return
        yield TimestampedValue(message, self._reading.at_s)


def _archive_topic(path: str) -> str:
    topic = partition_value(path, "topic")
    return topic if topic != UNKNOWN else RAW_FILES_TOPIC


def _decode_archive_line(_path: str, _line_number: int, line: bytes) -> RawMessage:
    return RawMessage.from_archive_line(line)


class _FirstPerCoordinatesFn(beam.DoFn):
    def setup(self) -> None:
        self._tally = Tally(NAMESPACE)

    def process(self, element: tuple[tuple[str, int, int], Iterable[RawMessage]]) -> Iterable[Any]:
        copies = list(element[1])
        if len(copies) > 1:
            self._tally.inc("duplicate_lines", len(copies) - 1)
            for pair in self._tally.take():
                yield pvalue.TaggedOutput(TALLY, pair)
        counter("messages").inc()
        yield copies[0]


class ReadObjects(beam.PTransform):
    """Globs -> `messages` RawMessage and `failed` ErrorRecord: list, spread the objects over the workers,
    read each line."""

    def __init__(self, patterns: list[str], reading: LineReading) -> None:
        super().__init__()
        self._patterns = patterns
        self._reading = reading

    def expand(self, pipeline: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        listed = (
            pipeline
            | "Patterns" >> beam.Create(self._patterns)
            | "ListObjects" >> beam.ParDo(_MatchFn(self._reading)).with_outputs(FAILED, main="paths")
        )
        read = (
            listed.paths
            # One object per element on any worker: a day's archive is thousands of objects.
            | "SpreadObjects" >> beam.Reshuffle()
            | "ReadLines" >> beam.ParDo(_ReadLinesFn(self._reading)).with_outputs(FAILED, TALLY, main=MESSAGES)
        )
        failed = (listed[FAILED], read[FAILED]) | "SourceFailures" >> beam.Flatten()
        return {MESSAGES: read[MESSAGES], FAILED: failed, TALLY: read[TALLY]}


def read_archive(
    pipeline: beam.Pipeline,
    root: str,
    topics: list[str],
    start_ms: int,
    end_ms: int,
    job_name: str,
    at_s: float,
    storage_client: Callable[[], Any] = default_storage_client,
) -> dict[str, beam.PCollection]:
    """The archive's messages of `topics` with a Kafka timestamp in [start_ms, end_ms), each once."""
    patterns = [f"{root.rstrip('/')}/{prefix}*" for prefix in archive_range_prefixes(topics, start_ms, end_ms)]
    in_range: Callable[[RawMessage], bool] = lambda m: start_ms <= m.timestamp_ms < end_ms  # noqa: E731
    reading = LineReading(_decode_archive_line, _archive_topic, in_range, job_name, at_s, storage_client)
    read = pipeline | "ReadArchive" >> ReadObjects(patterns, reading)
    # The archive is written at least once: lines with the same coordinates are one message. The group keeps
    # the lines' event time (the launch, `at_s`) and holds the watermark there: by default a group in the
    # global window outputs at the window's end, and a message moved back to `at_s` after it is late for
    # the dead-letter files' windows, which a runner may drop (Prism does: the error records were lost).
    messages = (
        read[MESSAGES]
        | "ByCoordinates" >> beam.Map(lambda m: ((m.topic, m.partition, m.offset), m))
        | "KeepLaunchTime" >> beam.WindowInto(GlobalWindows(), timestamp_combiner=TimestampCombiner.OUTPUT_AT_EARLIEST)
        | "GroupCopies" >> beam.GroupByKey()
        | "FirstCopy" >> beam.ParDo(_FirstPerCoordinatesFn()).with_outputs(TALLY, main=MESSAGES)
    )
    copies = messages[TALLY] | "TallyInGlobalWindow" >> beam.WindowInto(GlobalWindows())
    tally = (read[TALLY], copies) | "ReadTallies" >> beam.Flatten()
    return {MESSAGES: messages[MESSAGES], FAILED: read[FAILED], TALLY: tally}


def read_raw_files(
    pipeline: beam.Pipeline,
    pattern: str,
    topic: str,
    job_name: str,
    at_s: float,
    storage_client: Callable[[], Any] = default_storage_client,
    timestamp_ms: int = 0,
) -> dict[str, beam.PCollection]:
    """Raw messages, one a line, from the files `pattern` matches (local or gs://). A line's coordinates:
    `topic`, its file's file_partition and its line number; its timestamp `timestamp_ms` (0 by default:
    a file's message never overwrites what a Kafka message wrote)."""

    def decode(path: str, line_number: int, line: bytes) -> RawMessage:
        return RawMessage(topic, file_partition(path), line_number, timestamp_ms, None, line)

    reading = LineReading(decode, lambda _path: topic, lambda _m: True, job_name, at_s, storage_client)
    read = pipeline | "ReadRawFiles" >> ReadObjects([pattern], reading)
    messages = read[MESSAGES] | "CountMessages" >> beam.Map(_counted)
    return {MESSAGES: messages, FAILED: read[FAILED], TALLY: read[TALLY]}


def _counted(message: RawMessage) -> RawMessage:
    counter("messages").inc()
    return message
