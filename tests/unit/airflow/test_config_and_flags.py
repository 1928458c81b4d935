"""Settings from the k2f Variable, and the pipeline flags built from them."""

from __future__ import annotations

import json

import pytest
from k2f_airflow.config import VARIABLE, ConfigError, K2fConfig, load_config, settings_table
from k2f_airflow.launch_flags import local_runner, pipeline_options, store_flags


def test_the_k2f_variable_overrides_defaults_and_is_typed(variables):
    variables({"runner": "local", "topics": "a, b", "health_max_consumer_lag": "7", "replay_max_objects": 9})
    cfg = load_config()
    assert cfg.runner == "local" and cfg.topic_list == ["a", "b"]
    assert cfg.health_max_consumer_lag == 7 and cfg.replay_max_objects == 9
    assert cfg.job_name == "kafka-to-fhir"  # default


def test_the_settings_are_one_variable_read_once():
    reads = []

    def getter(name):
        reads.append(name)
        return json.dumps({"runner": "local", "topics": "t"})

    assert load_config(getter).topics == "t"
    assert reads == [VARIABLE]


def test_a_bad_variable_names_the_key():
    def load(value):
        return load_config({VARIABLE: value}.get)

    with pytest.raises(ConfigError, match="k2f.replay_max_attempts must be an integer"):
        load('{"replay_max_attempts": "many"}')
    with pytest.raises(ConfigError, match="k2f.runner must be one of"):
        load('{"runner": "spark"}')
    with pytest.raises(ConfigError, match="unknown setting.*k2f_topics"):
        load('{"k2f_topics": "old-style key"}')
    with pytest.raises(ConfigError, match="k2f.topics must be a string"):
        load('{"topics": ["a"]}')
    with pytest.raises(ConfigError, match="not JSON"):
        load("{topics: a}")
    with pytest.raises(ConfigError, match="JSON object"):
        load('["a"]')
    with pytest.raises(ConfigError, match="Variable k2f is not set.*Migrating"):
        load_config({}.get)
    with pytest.raises(ConfigError, match="set topics, error_bucket in the Airflow Variable k2f"):
        K2fConfig().require("topics", "error_bucket")


def test_pipeline_options_may_be_an_object_or_its_json(variables):
    variables({"pipeline_options": {"max_num_workers": 4}})
    assert load_config().extra_pipeline_options == {"max_num_workers": 4}


def test_params_override_only_known_settings(local_cfg):
    assert local_cfg.with_overrides({"job_name": "other", "topics": None}).job_name == "other"
    with pytest.raises(ConfigError, match="unknown"):
        local_cfg.with_overrides({"nope": 1})


def test_every_setting_is_listed_once_and_no_launcher_program_is_a_setting():
    names = [name for name, _, _ in settings_table()]
    assert len(names) == len(set(names)) and "topics" in names
    assert "py_interpreter" not in names


def test_dataflow_flags_are_the_pipelines_own(dataflow_cfg):
    assert pipeline_options(dataflow_cfg) == {
        "topics": "patients,patients-b",
        "kafka_secret_resource_name": "projects/p/secrets/kafka/versions/latest",
        "kafka_consumer_group": "kafka-to-fhir",
        "gcs_archive_bucket": "archive",
        "gcs_error_bucket": "errors",
        "streaming": True,
        "hcapi_project_id": "hc-project",
        "hcapi_location": "us-central1",
        "hcapi_dataset": "ds",
        "hcapi_post_fhir_store": "post",
        "hcapi_get_fhir_store": "get",
        "hcapi_version": "v1",
        "temp_location": "gs://tmp-bucket/tmp",
        "max_num_workers": 3,
    }


def test_the_flags_parse_with_the_pipelines_parser(dataflow_cfg, local_cfg):
    from airflow.providers.apache.beam.hooks.beam import beam_options_to_args

    from beam_pipeline.dataflow_kafka_to_fhirstore import help_parser

    for cfg in (dataflow_cfg, local_cfg):
        known, _ = help_parser().parse_known_args(beam_options_to_args(pipeline_options(cfg)))
        assert known.topics == "patients,patients-b" and known.gcs_error_bucket == "errors"


def test_local_runner_uses_the_pipelines_local_options(local_cfg):
    runner, options = local_runner(local_cfg)
    assert runner.endswith("Runner")
    assert options["job_endpoint"] == "127.0.0.1:8073"
    assert options["environment_config"] == "127.0.0.1:50000"
    assert options["expansion_service"] == "127.0.0.1:8097"
    assert options["job_name"] == "k2f-unit" and options["streaming"] is True


def test_store_flags_need_a_store():
    with pytest.raises(ConfigError, match="hcapi_project_id"):
        store_flags(K2fConfig())
    assert store_flags(K2fConfig(fhir_base_url="http://x/fhir")) == {"fhir_base_url": "http://x/fhir"}


def test_profile_validation_is_passed_when_set_and_the_pipeline_parses_it(dataflow_cfg):
    from airflow.providers.apache.beam.hooks.beam import beam_options_to_args

    from beam_pipeline.dataflow_kafka_to_fhirstore import help_parser

    assert "profile_validation" not in pipeline_options(dataflow_cfg)  # the pipeline's default then
    warn = dataflow_cfg.with_overrides({"profile_validation": "warn"})
    assert pipeline_options(warn)["profile_validation"] == "warn"
    known, _ = help_parser().parse_known_args(beam_options_to_args(pipeline_options(warn)))
    assert known.profile_validation == "warn"
    with pytest.raises(ConfigError, match="k2f.profile_validation must be one of off, warn, enforce"):
        load_config({VARIABLE: '{"profile_validation": "strict"}'}.get)


def test_the_retry_topic_is_passed_when_set_and_the_pipeline_parses_it(dataflow_cfg):
    from airflow.providers.apache.beam.hooks.beam import beam_options_to_args

    from beam_pipeline.dataflow_kafka_to_fhirstore import help_parser

    assert "reference_retry_topic" not in pipeline_options(dataflow_cfg)  # no retry in the job then
    retried = dataflow_cfg.with_overrides({"reference_retry_topic": "patients-retry"})
    assert pipeline_options(retried)["reference_retry_topic"] == "patients-retry"
    known, _ = help_parser().parse_known_args(beam_options_to_args(pipeline_options(retried)))
    assert known.reference_retry_topic == "patients-retry"
