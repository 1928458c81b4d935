"""The drain DAG's conclusions from committed offsets and the pipeline's commit metadata."""

from __future__ import annotations

from k2f_airflow.drain import drain_report, offsets_signature, unsettled
from k2f_airflow.kafka_client import PartitionLag

from beam_pipeline.contracts.commit_metadata import CommitMetadata


def _partition(p: int, committed: int, read: int, in_flight: int, settled: int, job: str = "k2f") -> PartitionLag:
    metadata = CommitMetadata(job=job, read=read, in_flight=in_flight, settled=settled, draining=True, at_ms=0)
    return PartitionLag("patients", p, committed, end=read + 5, lag=read + 5 - committed, metadata=metadata)


def test_a_drained_job_reports_what_it_settled_and_nothing_left():
    report = drain_report([_partition(0, 40, 40, 0, 40), _partition(1, 60, 60, 0, 55)], "k2f")
    assert report.complete and report.settled == 95 and report.partitions == 2
    assert "nothing left behind" in report.summary() and "95" in report.summary()


def test_messages_in_flight_are_named_by_partition_and_count_only():
    partitions = [_partition(0, 40, 43, 3, 40), _partition(1, 60, 60, 0, 55)]
    assert unsettled(partitions, "k2f") == [("patients/0", 3)]
    report = drain_report(partitions, "k2f")
    assert not report.complete and "patients/0 (3)" in report.summary() and "reads them again" in report.summary()


def test_another_jobs_commits_are_not_this_jobs():
    partitions = [_partition(0, 40, 43, 3, 40, job="other"), PartitionLag("patients", 1, None, 5, 5)]
    assert unsettled(partitions, "k2f") == []
    assert drain_report(partitions, "k2f").settled == 0


def test_the_signature_changes_when_offsets_move():
    before = offsets_signature([_partition(0, 40, 43, 3, 40)])
    assert before == offsets_signature([_partition(0, 40, 43, 3, 40)])
    assert before != offsets_signature([_partition(0, 43, 43, 0, 43)])
