"""What the drain DAG concludes from the consumer group's committed offsets and the pipeline's commit metadata.

The pipeline commits, per partition, the first offset whose message has not settled, with metadata saying
how far it has read (beam_pipeline/contracts/commit_metadata.py). A drained job has nothing in flight:
committed equals read on every partition it read. Summaries carry counts and partition numbers only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from k2f_airflow.kafka_client import PartitionLag


@dataclass(frozen=True)
class DrainReport:
    job_name: str
    settled: int
    partitions: int
    # (topic/partition, messages read and not settled) wherever the job's last commit left some.
    left: tuple[tuple[str, int], ...]

    @property
    def complete(self) -> bool:
        return not self.left

    def summary(self) -> str:
        head = f"job {self.job_name} settled {self.settled} message(s) on {self.partitions} partition(s)"
        if self.complete:
            return f"{head}; committed offsets equal offsets read on every partition: nothing left behind"
        where = ", ".join(f"{tp} ({n})" for tp, n in self.left)
        count = sum(n for _, n in self.left)
        return (
            f"{head}; {count} message(s) read but not settled when it stopped, on {where}: their offsets were not "
            "committed, so the next launch reads them again (nothing lost; the idempotent write absorbs the repeat)"
        )


def _of_job(partitions: Iterable[PartitionLag], job_name: str) -> list[PartitionLag]:
    return [p for p in partitions if p.metadata is not None and p.metadata.job == job_name]


def unsettled(partitions: Iterable[PartitionLag], job_name: str) -> list[tuple[str, int]]:
    """(topic/partition, in flight) where the job's last commit still held messages."""
    return [
        (f"{p.topic}/{p.partition}", max(p.metadata.in_flight, p.read_gap or 0))
        for p in _of_job(partitions, job_name)
        if p.metadata is not None and (p.metadata.in_flight or p.read_gap)
    ]


def drain_report(partitions: Iterable[PartitionLag], job_name: str) -> DrainReport:
    partitions = list(partitions)
    mine = _of_job(partitions, job_name)
    return DrainReport(
        job_name=job_name,
        settled=sum(p.metadata.settled for p in mine if p.metadata is not None),
        partitions=len(mine),
        left=tuple(unsettled(partitions, job_name)),
    )


def offsets_signature(partitions: Iterable[PartitionLag]) -> tuple[tuple[str, int, int | None, int], ...]:
    """What must stay still between two looks for the job to count as settled."""
    return tuple(sorted((p.topic, p.partition, p.committed, p.metadata.read if p.metadata else -1) for p in partitions))
