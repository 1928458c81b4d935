"""The runner local jobs are submitted with: Beam's PortableRunner, aimed at Prism's job service.

KafkaIO's SDF read (what an expansion service without KAFKA_READ_EXPERIMENT gives) commits consumer offsets
from a DoFn that declares @RequiresStableInput, and Prism refuses any pipeline that lists that requirement.
Stable input asks the runner to replay a retried bundle with the same elements; Prism never retries a bundle
(a failed bundle fails the job), so the guarantee holds there without the declaration, and dropping it is
what lets the local job commit offsets the way Dataflow does. Dataflow never sees this class.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability.portable_runner import PortableRunner

STABLE_INPUT = common_urns.requirements.REQUIRES_STABLE_INPUT.urn


class LocalPrismRunner(PortableRunner):
    """PortableRunner minus the stable-input requirement Prism does not implement."""

    def _optimize_pipeline(
        self, pipeline: beam_runner_api_pb2.Pipeline, options: PipelineOptions
    ) -> beam_runner_api_pb2.Pipeline:
        optimized = super()._optimize_pipeline(pipeline, options)
        without = [r for r in optimized.requirements if r != STABLE_INPUT]
        del optimized.requirements[:]
        optimized.requirements.extend(without)
        return optimized
