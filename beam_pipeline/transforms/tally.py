"""What a batch job counted, as data: the reprocess's summary (the graph's SummariseReprocess step).

Counters are a running job's progress, but a runner may report a batch job ended before it has merged its
last bundles' counters, and Prism, on thousands of messages, keeps almost none of them. So the steps a
reprocess runs also output what they count as ("namespace/name", n) pairs, under the counters' own names
(contracts/reprocess_summary.py reads either), and SummariseReprocess adds them up and writes the totals as
one object in the error bucket once everything else the job does is done, error records included: the
object's presence means the job's work is over, and its counts are exact whatever the runner's metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from beam_pipeline.contracts.bucket_layout import bucket_name, reprocess_summary_name
from beam_pipeline.contracts.reprocess_summary import metric_key, summary_object

log = logging.getLogger(__name__)

Pair = tuple[str, int]


class Tally:
    """Beam counters of one namespace that also remember what they counted until take()."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._counters: dict[str, Any] = {}
        self._counts: dict[str, int] = {}

    def inc(self, name: str, n: int = 1) -> None:
        """Count `n` (a bool counts 1 or nothing)."""
        n = int(n)
        if not n:
            return
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = beam.metrics.Metrics.counter(self._namespace, name)
        counter.inc(n)
        self._counts[name] = self._counts.get(name, 0) + n

    def take(self) -> list[Pair]:
        """What was counted since the last take, as pairs to output."""
        counts, self._counts = self._counts, {}
        return [(metric_key(self._namespace, name), n) for name, n in counts.items()]


class CountAs(beam.PTransform):
    """PCollection -> one pair (name, its element count), zero included."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection[Pair]:
        name = self._name
        return (
            pcoll
            | "InGlobalWindow" >> beam.WindowInto(GlobalWindows())
            | "Count" >> beam.combiners.Count.Globally()
            | "AsPair" >> beam.Map(lambda n: (name, int(n)))
        )


class _WriteSummaryFn(beam.DoFn):
    def __init__(self, error_bucket: str, job_name: str, launch_ms: int, storage_client: Callable[[], Any]) -> None:
        self._bucket = error_bucket
        self._job_name = job_name
        self._launch_ms = launch_ms
        self._storage_client = storage_client

    def process(self, totals: dict[str, int], _done: int) -> Iterable[str]:
        name = reprocess_summary_name(self._job_name, self._launch_ms)
        body = summary_object(self._job_name, self._launch_ms, totals)
        try:
            bucket = self._storage_client().bucket(bucket_name(self._bucket))
            bucket.blob(name).upload_from_string(body, content_type="application/json")
        except Exception as exc:  # noqa: BLE001  (the command then sums the job's counters instead)
            log.error("SummariseReprocess: the summary was not written (%s)", type(exc).__name__)
            return
        yield name


class SummariseReprocess(beam.PTransform):
    """Pair PCollections -> the name of the summary object written (contracts/reprocess_summary.py): the
    pairs summed per name once `after` (the dead-lettered messages) is complete, so the object appears only
    when every error record is written too."""

    def __init__(
        self,
        error_bucket: str,
        job_name: str,
        launch_ms: int,
        storage_client: Callable[[], Any],
        after: beam.PCollection,
    ) -> None:
        super().__init__()
        self._args = (error_bucket, job_name, launch_ms, storage_client)
        self._after = after

    def expand(self, tallies: tuple[beam.PCollection, ...]) -> beam.PCollection[str]:
        done = self._after | "WhenDeadLettered" >> CountAs("dead_lettered")
        totals = (
            [t | f"InGlobalWindow{i}" >> beam.WindowInto(GlobalWindows()) for i, t in enumerate(tallies)]
            | "AllTallies" >> beam.Flatten()
            | "SumPerName" >> beam.CombinePerKey(sum)
            | "AsOneDict" >> beam.combiners.ToDict()
        )
        return totals | "WriteSummary" >> beam.ParDo(
            _WriteSummaryFn(*self._args), beam.pvalue.AsSingleton(done | "OneCount" >> beam.Map(lambda p: p[1]))
        )
