"""Property: whatever arrives from Kafka, the whole graph after the read gives every message exactly one
outcome (written, filtered or an error record) and exactly one archive line, and every valid one lands.

Arbitrary bytes, keys, headers (replay headers among them, in and out of range) and Kafka timestamps are
fed as RawMessages through `build_steps` on the local runner (Prism), with valid Patients mixed in; the
sinks are the real ones of the local stack (GCS emulator, HAPI).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import apache_beam as beam
import httpx
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import BeamAssertException, assert_that
from apache_beam.transforms.window import TimestampedValue
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from beam_pipeline.contracts.error_record import (
    HEADER_ATTEMPT,
    HEADER_CODE,
    HEADER_FIRST_FAILURE,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_RECORD_ID,
    HEADER_STAGE,
    HEADER_TIMESTAMP,
    HEADER_TOPIC,
    from_json,
)
from beam_pipeline.dataflow_kafka_to_fhirstore import JobSettings, build_steps
from beam_pipeline.fhir_store import FhirStoreConfig
from beam_pipeline.raw_message import RawMessage
from beam_pipeline.us_core import TransformConfig
from dev.local_stack import ndjson_lines
from launcher.local_stack_flags import local_runner_options
from tests.integration.test_hostile_input_e2e import error_records
from tests.unit.pipeline.test_hostile_input import POISON

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
TOPICS = (f"hostile-{RUN}-a", f"hostile-{RUN}-b")
ORIGINAL_TOPIC = f"hostile-{RUN}-orig"  # the only valid topic replay headers name
SYSTEM = f"urn:k2f-hostile:{RUN}"
STAGES = ("parse", "validate", "map", "write")
VALID_PER_RUN = 4

REPLAY_HEADERS = (
    HEADER_ATTEMPT,
    HEADER_TOPIC,
    HEADER_PARTITION,
    HEADER_OFFSET,
    HEADER_TIMESTAMP,
    HEADER_FIRST_FAILURE,
    HEADER_RECORD_ID,
    HEADER_STAGE,
    HEADER_CODE,
)
header_values = st.one_of(
    st.binary(max_size=24),
    st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),
    st.sampled_from([ORIGINAL_TOPIC.encode(), b"1", b"0", b"253402300800000", b"t\nx", b"t" * 1100, b"\xff\xfe", b""]),
)
headers = st.lists(st.tuples(st.sampled_from(REPLAY_HEADERS) | st.text(max_size=8), header_values), max_size=6)
timestamps = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([-1, 0, 253_402_300_800_000, -62_135_596_800_001]),
    st.integers(1_500_000_000_000, 1_900_000_000_000),
)
names = st.text(max_size=12) | st.sampled_from(["Na", "Null", "None", "", "A\u0000B", "\ud800"])
patient_like = st.fixed_dictionaries(
    {"Id": st.text(min_size=1, max_size=12), "FIRST": names, "COUNTRY": st.sampled_from(["US", "CA", ""])},
    optional={
        "LAST": names,
        "BIRTHDATE": st.dates().map(str) | st.text(max_size=24),
        "DEATHDATE": st.text(max_size=30),
        "ZIP": st.integers(-(10**6), 10**6) | st.text(max_size=6),
        "STATE": st.sampled_from(["MA", "Texas", "nowhere"]),
        "LAT": st.floats(allow_nan=False, allow_infinity=False),
        "MESSAGE_TYPE": st.sampled_from(["patient", "encounter", "spaceship"]),
    },
).map(lambda record: json.dumps(record).encode("utf-8", "surrogatepass"))
values = st.one_of(
    st.binary(max_size=120),
    st.sampled_from([raw for _, raw, _, _ in POISON]),
    patient_like,
)
message_parts = st.tuples(
    st.sampled_from(TOPICS), st.integers(0, 3), timestamps, st.none() | st.binary(max_size=16), values, headers
)


def _valid(example: int) -> list[bytes]:
    return [
        json.dumps(
            {"Id": f"valid-{example}-{i}", "FIRST": "Canary", "LAST": ["Na", "Null", "None", "Lee"][i], "COUNTRY": "US"}
        ).encode()
        for i in range(VALID_PER_RUN)
    ]


def _messages(parts: list[tuple], example: int) -> list[RawMessage]:
    """Offsets numbered per run so every message has its own coordinates; everything else as drawn."""
    base = example * 10_000
    drawn = [
        RawMessage(topic, partition, base + i, ts, key, value, tuple(hs))
        for i, (topic, partition, ts, key, value, hs) in enumerate(parts)
    ]
    valid = [
        RawMessage(TOPICS[0], 9, base + 9000 + i, 1_795_000_000_000, None, v) for i, v in enumerate(_valid(example))
    ]
    # Valid messages between the hostile ones, as on a real topic.
    return drawn[: len(drawn) // 2] + valid + drawn[len(drawn) // 2 :]


def _identity(message: RawMessage) -> tuple:
    return ("message", message.topic, message.partition, message.offset)


def _error_identity(source: object, attempt: int, payload: bytes) -> tuple:
    return ("error", source.topic, source.partition, source.offset, attempt, payload)


def _one_outcome_each(messages: list[RawMessage]):
    """A matcher: outcomes as a multiset equal one per message (its own, or its error record's identity)."""
    own = {_identity(m): m for m in messages}

    def check(outcomes: list[tuple]) -> None:
        got = Counter(outcomes)
        duplicated = sum(n - 1 for n in got.values() if n > 1)
        delivered = {o for o in got if o[0] == "message"}
        strangers = delivered - set(own)
        expected_errors = Counter()
        for identity, message in own.items():
            if identity not in delivered:
                fields = message.error_fields()
                expected_errors[_error_identity(fields["source"], fields["attempt"], message.value)] += 1
        errors = Counter({o: n for o, n in got.items() if o[0] == "error"})
        lost = sum((expected_errors - errors).values())
        extra = sum((errors - expected_errors).values())
        if duplicated or strangers or lost or extra:
            raise BeamAssertException(
                f"{len(messages)} messages, {len(outcomes)} outcomes: duplicated {duplicated}, "
                f"unknown {len(strangers)}, lost {lost}, unexpected error records {extra}"
            )

    return check


def _settings(job_name: str, env: dict[str, str]) -> JobSettings:
    return JobSettings(
        job_name=job_name,
        archive_bucket=env["GCS_ARCHIVE_BUCKET"],
        error_bucket=env["GCS_ERROR_BUCKET"],
        window_seconds=5,
        fhir=FhirStoreConfig(base_url=env["FHIR_BASE_URL"], bundle_size=50),
        mapping=TransformConfig(source_id_system=SYSTEM, filter_country="US"),
    )


EXAMPLES = iter(range(1, 1000))


@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.generate],  # one example is a whole pipeline run: no shrinking
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(parts=st.lists(message_parts, min_size=40, max_size=60))
def test_every_message_has_one_outcome_and_one_archive_line(env, parts):
    example = next(EXAMPLES)
    messages = _messages(parts, example)
    job_name = f"hostile-graph-{RUN}-{example}"
    now = time.time()
    p = beam.Pipeline(options=PipelineOptions(local_runner_options(env)))
    fed = p | beam.Create(messages) | "AtReadTime" >> beam.Map(lambda m: TimestampedValue(m, now))
    outputs = build_steps(fed, _settings(job_name, env))
    outcomes = (
        outputs["written"] | "Written" >> beam.Map(_identity),
        outputs["filtered"] | "Filtered" >> beam.Map(_identity),
        outputs["failed"] | "Failed" >> beam.Map(lambda r: _error_identity(r.source, r.attempt, r.raw_payload())),
    ) | beam.Flatten()
    assert_that(outcomes, _one_outcome_each(messages))
    result = p.run()
    assert result.wait_until_finish() == "DONE"
    counters = result.metrics().query(MetricsFilter().with_namespace("dead_letter"))["counters"]

    # Exactly one archive line per message, in the real bucket.
    ours = {(m.topic, m.partition, m.offset) for m in messages}
    archive = [
        line
        for topic in TOPICS
        for line in ndjson_lines(env["GCS_ARCHIVE_BUCKET"], f"archive/topic={topic}/")
        if (line["topic"], line["partition"], line["offset"]) in ours
    ]
    counts = Counter((line["topic"], line["partition"], line["offset"]) for line in archive)
    assert set(counts) == ours and max(counts.values()) == 1, "a message archived twice or not at all"

    # Every error record the graph produced is in the error bucket, once, and is about one of ours. Records
    # go under their source's topic, which valid replay headers name (random bytes can be a valid topic).
    source_topics = {m.error_fields()["source"].topic for m in messages}
    prefixes = [f"stage={stage}/topic={topic}/" for stage in STAGES for topic in sorted(source_topics)]
    records = [r for r in error_records(env, prefixes) if r["job_name"] == job_name]
    dead_letters = sum(c.committed if c.committed is not None else c.attempted for c in counters)
    assert len(records) == dead_letters > 0
    possible = {_error_identity(f["source"], f["attempt"], m.value) for m in messages for f in [m.error_fields()]}
    # Read back through the contract: a replayed message's source may lack a partition or an offset (its
    # headers named only a topic and an attempt), and the stored record then leaves them out.
    stored = [from_json(json.dumps(r)) for r in records]
    assert all(_error_identity(r.source, r.attempt, r.raw_payload()) in possible for r in stored)

    # Every valid message landed.
    for i in range(VALID_PER_RUN):
        assert _patients_with_id(env, f"valid-{example}-{i}") == 1


def _patients_with_id(env: dict[str, str], value: str) -> int:
    response = httpx.get(
        f"{env['FHIR_BASE_URL']}/Patient", params={"identifier": f"{SYSTEM}|{value}", "_summary": "count"}, timeout=60
    )
    response.raise_for_status()
    return int(response.json()["total"])
