"""--topic_types: topics that carry one kind of message, in the pipeline flags and the dry-run CLI."""

from __future__ import annotations

import io
import json

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline import dry_run as cli
from beam_pipeline.job_flags import KafkaToFhirOptions
from beam_pipeline.us_core.config import config_from_flags, parse_topic_types

CONDITION = {"START": "2019-02-17", "PATIENT": "p-1", "CODE": "444814009", "DESCRIPTION": "Viral sinusitis"}


def test_parse_topic_types():
    assert parse_topic_types(None) == {}
    assert parse_topic_types("") == {}
    assert parse_topic_types(" a.conditions = Condition ,b=patient,") == {"a.conditions": "condition", "b": "patient"}


@pytest.mark.parametrize("bad", ["conditions", "=condition", "conditions=", "a=b,c"])
def test_malformed_topic_types_stop_the_launch(bad):
    with pytest.raises(ValueError, match="topic=type"):
        parse_topic_types(bad)


def test_pipeline_flag_reaches_the_mapping():
    opts = PipelineOptions(
        ["--topics", "t", "--kafka_secret_resource_name", "projects/p/secrets/s/versions/1",
         "--gcs_archive_bucket", "a", "--gcs_error_bucket", "e", "--topic_types", "synthea.conditions=condition"]
    ).view_as(KafkaToFhirOptions)  # fmt: skip
    assert config_from_flags(opts).topic_types == {"synthea.conditions": "condition"}


def test_dry_run_cli_types_messages_by_topic():
    args = cli.parser().parse_args(["--topic_types", "synthea.conditions=condition"])
    out = io.StringIO()
    counts = cli.run([json.dumps(CONDITION).encode()], out, cli.config_from(args), topic="synthea.conditions")
    assert counts["ok"] == 1
    assert json.loads(out.getvalue())["resources"][0]["resourceType"] == "Condition"
