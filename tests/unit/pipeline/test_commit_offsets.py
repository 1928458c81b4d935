"""CommitOffsets in a Beam pipeline: the committed offset stops at the first message not yet settled.

Kafka itself is exercised by tests/integration/test_delivery_under_load.py; here the committer records
what it would send, so the step's wiring (events, compaction, state, the commit at bundle end) is checked
on Beam's in-process runner.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.contracts.commit_metadata import decode
from beam_pipeline.delivery.committer import OffsetCommitter
from beam_pipeline.delivery.ledger import Delivery
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.transforms.commit_offsets import CommitOffsets

COMMITS: list[dict] = []


class _RecordingCommitter(OffsetCommitter):
    def __init__(self) -> None:
        super().__init__("projects/p/secrets/kafka/versions/1", "group")

    def start_offset(self, topic: str, partition: int) -> int:
        return 0

    def commit(self, offsets) -> None:
        COMMITS.append(dict(offsets))


class _NoDrain:
    def requested(self) -> bool:
        return False


def _run(stored: list[int], archived: list[int], n: int = 10) -> tuple[int, dict]:
    COMMITS.clear()
    messages = [RawMessage("t", 0, i, 0, None, b"{}") for i in range(n)]
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        read = p | "Read" >> beam.Create(messages)
        _ = {
            "read": read,
            "archived": p | "Archived" >> beam.Create([Delivery("t", 0, i) for i in archived]),
            "stored": p | "Stored" >> beam.Create([m for m in messages if m.offset in stored]),
        } | CommitOffsets(_RecordingCommitter(), _NoDrain(), "job")
    offset, metadata = COMMITS[-1][("t", 0)]
    return offset, decode(metadata)


def test_the_commit_stops_at_the_first_message_not_stored():
    offset, metadata = _run(stored=[0, 1, 2, 3, 4, 6, 7, 8, 9], archived=list(range(10)))
    assert offset == 5
    assert metadata.read == 10 and metadata.in_flight == 5 and metadata.settled == 5 and metadata.job == "job"


def test_the_commit_waits_for_the_archive_too():
    offset, _ = _run(stored=list(range(10)), archived=[0, 1, 2, 4])
    assert offset == 3


def test_everything_settled_commits_past_the_last_message():
    offset, metadata = _run(stored=list(range(10)), archived=list(range(10)))
    assert offset == 10 and metadata.in_flight == 0 and metadata.settled == 10
