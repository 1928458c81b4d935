"""A small synthetic population end to end: Kafka (two topics) -> the streaming job on Prism -> HAPI.

50 patients on a topic typed by --topic_types, and 10 clinical rows each (an encounter, two conditions, three
observations, an immunization, an allergy, a procedure, a medication) on a second topic, typed by their
MESSAGE_TYPE. The rows of 5 patients are published before any patient: the job sends them to its retry topic
(--reference_retry_topic) instead of the error bucket, and writes them again once their patients are there;
the rows of one patient whose Patient comes only later become retryable reference_not_found records after the
job's last retry, and the replay (the replay DAG's ErrorReplayer) lands them once that patient is there. With
the later rows, 10 HL7 v2 ADT events (the second feed, mappings/adt/) on the same clinical topic, each a
Patient and an Encounter that refers to it. Then: the count per type in HAPI, every reference resolved
(counted through the patient's identifier), each ADT event's Patient and Encounter found by their identifiers
and linked, no error record, and a re-publish of everything changes nothing.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer
from google.cloud import storage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from k2f_airflow.replay import ErrorReplayer  # noqa: E402

from beam_pipeline.us_core import TransformConfig, mapping_set  # noqa: E402
from dev.clinical_rows import clinical_rows, patient_row  # noqa: E402
from dev.local_stack import (  # noqa: E402
    cancel_job,
    create_topics,
    fhir_count,
    kafka_plain,
    kafka_sasl,
    launch_local_job,
    ndjson_lines,
    publish,
    wait_for,
)
from dev.synthea_e2e import resource_total  # noqa: E402
from launcher.job_service import JobServiceClient  # noqa: E402
from tests.support.adt import VISIT_NUMBER_SYSTEM, adt_messages  # noqa: E402

pytestmark = pytest.mark.integration

PATIENTS, EARLY = 50, 5
# The job's retry delays (seconds): short, so the orphan's rows reach the error bucket within the test.
# A retry every 3 s for 48 s: a row lands 3 s at most after its patient (a row behind an encounter, after
# the encounter's), however long the patients take within that; then the orphan's rows are error records.
# Equal delays keep the retry topic in due order on one partition.
RETRY_DELAYS = (3,) * 16
# HL7 v2 ADT events (A01, A04, A08, A03): each writes a Patient and an Encounter, under the run's system.
ADT = 10
# The rows each patient gets: (MESSAGE_TYPE, CODE) picks them out of clinical_rows().
PICKS = [
    ("encounter", "162673000"), ("condition", "444814009"), ("condition", "38341003"),
    ("observation", "29463-7"), ("observation", "8480-6"), ("observation", "72166-2"),
    ("immunization", "140"), ("allergy", "91935009"), ("procedure", "710824005"), ("medication", "308182"),
]  # fmt: skip
EXPECTED = {
    "Encounter": PATIENTS + ADT,
    "Condition": 2 * PATIENTS,
    "Observation": 3 * PATIENTS,
    "Immunization": PATIENTS,
    "AllergyIntolerance": PATIENTS,
    "Procedure": PATIENTS,
    "MedicationRequest": PATIENTS,
}
PATIENT_PARAM = {"Immunization": "patient", "AllergyIntolerance": "patient"}


def _rows(patient: str, encounter: str) -> list[bytes]:
    rows, seen = [], set()
    for row in clinical_rows(patient, encounter):
        pick = (row["MESSAGE_TYPE"], row["CODE"])
        if pick in PICKS and pick not in seen:  # the second smoking-status row has the same code
            seen.add(pick)
            rows.append(json.dumps(row).encode())
    assert len(rows) == len(PICKS)
    return rows


def _type_of(row: bytes) -> str:
    kind = json.loads(row)["MESSAGE_TYPE"]
    return {"allergy": "AllergyIntolerance", "medication": "MedicationRequest"}.get(kind, kind.capitalize())


def _counts(env, system: str) -> dict[str, int]:
    """Resources per type whose patient reference resolved to a Patient of this run (chained search)."""
    out = {}
    for rtype in EXPECTED:
        param = f"{PATIENT_PARAM.get(rtype, 'subject')}:Patient.identifier"
        out[rtype] = resource_total(env["FHIR_BASE_URL"], rtype, {param: f"{system}|"})
    return out


def _outcomes(env, job_id: str) -> tuple[int, int]:
    """(messages read, outcomes: resources written, messages filtered or dead-lettered) from the job's counters.
    An ADT event writes two resources: it is finished when its outcomes count one more than it was read."""
    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        counters = jobs.counters(job_id)
    read = sum(v for k, v in counters.items() if k.startswith("parse_and_validate/"))
    done = counters.get("write_to_fhir_store/resources_written", 0) + counters.get("parse_and_validate/filtered", 0)
    done += sum(v for k, v in counters.items() if k.startswith("dead_letter/"))
    return read, done + counters.get("reference_retry/deferred", 0)


def _counter(env, job_id: str, name: str) -> int:
    with JobServiceClient(env["PRISM_ENDPOINT"]) as jobs:
        return jobs.counters(job_id).get(name, 0)


def _settled(env, job_id: str, published: int, adt_published: int = 0) -> bool:
    read, done = _outcomes(env, job_id)
    return read >= published and done >= read + adt_published


def _write_errors(env, topic: str) -> list[dict]:
    return ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage=write/topic={topic}/")


def _total(env, rtype: str, **params: str) -> int:
    return resource_total(env["FHIR_BASE_URL"], rtype, params)


def _adt_landed(env, system: str, events: list[tuple[str, str, bytes]]) -> None:
    """Each ADT event's Patient (by its MRN) and Encounter (by its visit number) are in HAPI once, and the
    Encounter's subject resolved to that Patient."""
    for mrn, visit, _ in events:
        assert _total(env, "Patient", identifier=f"{system}|{mrn}") == 1, mrn
        assert _total(env, "Encounter", identifier=f"{VISIT_NUMBER_SYSTEM}|{visit}") == 1, visit
        linked = {"identifier": f"{VISIT_NUMBER_SYSTEM}|{visit}", "subject:Patient.identifier": f"{system}|{mrn}"}
        assert _total(env, "Encounter", **linked) == 1, visit


def test_population_lands_with_early_rows_retried_and_nothing_duplicated(env):
    run = uuid.uuid4().hex[:8]
    system = f"urn:k2f-clinical-e2e:{run}"
    patients_topic, clinical_topic = f"clinical-e2e-{run}-patients", f"clinical-e2e-{run}-rows"
    retry_topic = f"clinical-e2e-{run}-retry"
    create_topics(kafka_plain(env), [patients_topic, clinical_topic])
    create_topics(kafka_plain(env), [retry_topic], partitions=1)
    ids = [(f"{run}-patient-{i:03d}", f"{run}-encounter-{i:03d}") for i in range(PATIENTS)]
    # Patients carry no MESSAGE_TYPE: their topic's type says what they are.
    patients = [
        json.dumps({k: v for k, v in patient_row(p, i).items() if k != "MESSAGE_TYPE"}).encode()
        for i, (p, _) in enumerate(ids)
    ]
    # The first patient's Patient comes only after the job's last retry of its rows.
    orphan, patients_first = patients[0], patients[1:]
    orphan_rows = _rows(*ids[0])
    early = [row for p, e in ids[:EARLY] for row in _rows(p, e)]
    late = [row for p, e in ids[EARLY:] for row in _rows(p, e)]
    events = adt_messages(f"{run}-adt", ADT)
    adt = [raw for _, _, raw in events]

    published = publish(kafka_sasl(env), clinical_topic, early)  # rows before any patient
    job_id = launch_local_job(
        env,
        f"clinical-e2e-{run}",
        [patients_topic, clinical_topic],
        f"--kafka_consumer_group=clinical-e2e-{run}",
        f"--source_id_system={system}",
        f"--topic_types={patients_topic}=patient",
        "--archive_window_seconds=5",
        f"--reference_retry_topic={retry_topic}",
        f"--reference_retry_delays={','.join(map(str, RETRY_DELAYS))}",
    )
    try:
        # 1. The early rows find no patient: the job sends each to its retry topic, not to the error bucket.
        deferred = lambda: _counter(env, job_id, "reference_retry/deferred") >= len(early)  # noqa: E731
        wait_for(deferred, 300, "early rows sent to the retry topic", 1)
        assert _write_errors(env, clinical_topic) == []
        assert fhir_count(env, system) == 0

        # 2. The patients but one, then the other rows: the early rows land from the retry topic.
        started = time.monotonic()
        published += publish(kafka_plain(env), patients_topic, patients_first)
        wait_for(lambda: fhir_count(env, system) >= len(patients_first), 300, "the Patients in HAPI", 1)
        published += publish(kafka_sasl(env), clinical_topic, late)
        # The ADT events with them: each is its own Patient and an Encounter that refers to it.
        adt_published = publish(kafka_sasl(env), clinical_topic, adt)
        published += adt_published
        without_orphan = {t: n - sum(1 for r in orphan_rows if _type_of(r) == t) for t, n in EXPECTED.items()}
        wait_for(lambda: _counts(env, system) == without_orphan, 300, "the retried rows in HAPI", 2)
        print(f"clinical e2e: retried rows landed {time.monotonic() - started:.0f} s after their patients")

        # 3. The orphan's rows, retried after each delay, are error records once the last one has passed.
        wait_for(lambda: len(_write_errors(env, clinical_topic)) >= len(orphan_rows), 300, "orphan records", 2)
        records = _write_errors(env, clinical_topic)
        # The job's retries are not attempts of the replay's count: each is still the first delivery's record.
        assert Counter((r["code"], r["retryable"], r["attempt"]) for r in records) == {
            ("reference_not_found", True, 1): len(orphan_rows)
        }
        assert {r["source"]["topic"] for r in records} == {clinical_topic}  # where they were first published
        assert {r["payload"].encode() for r in records} == set(orphan_rows)

        # 4. Its Patient, then a replay as the replay DAG does: the orphan's rows land too.
        published += publish(kafka_plain(env), patients_topic, [orphan])
        wait_for(lambda: fhir_count(env, system) >= PATIENTS + ADT, 300, "every Patient in HAPI", 2)
        bucket = storage.Client(project="k2f-local").bucket(env["GCS_ERROR_BUCKET"])
        replayed = rounds = 0
        for rounds in range(5):  # noqa: B007  (reported below)
            time.sleep(8)  # the last error window (5 s) reaches the bucket
            if not _write_errors(env, clinical_topic):
                break
            counts = ErrorReplayer(bucket, Producer(kafka_plain(env)), max_attempts=5).run(
                prefix=f"errors/stage=write/topic={clinical_topic}/"
            )
            assert counts.quarantined == 0
            replayed += counts.replayed
            published += counts.replayed
            wait_for(lambda: _counts(env, system) == EXPECTED, 300, "replayed messages in HAPI", 2)
        print(f"clinical e2e: {replayed} messages replayed in {rounds} rounds")
        assert replayed == len(orphan_rows)
        wait_for(lambda: _settled(env, job_id, published, adt_published), 300, "every message finished", 2)
        assert _write_errors(env, clinical_topic) == []
        assert fhir_count(env, system) == PATIENTS + ADT
        assert _counts(env, system) == EXPECTED
        _adt_landed(env, system, events)
        for stage in ("parse", "validate", "map"):
            assert ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage={stage}/topic={clinical_topic}/") == []
        # What each mapping version wrote is found by the meta.tag it carries.
        tags = {m.id: f"{m.tag['system']}|{m.tag['code']}" for m in mapping_set(TransformConfig()).mappings}
        assert _total(env, "Patient", identifier=f"{system}|", _tag=tags["synthea-patient"]) == PATIENTS
        assert _total(env, "Patient", identifier=f"{system}|", _tag=tags["adt-patient-visit"]) == ADT
        assert _total(env, "Encounter", identifier=f"{VISIT_NUMBER_SYSTEM}|", _tag=tags["adt-patient-visit"]) >= ADT

        # 4. The same population again: every resource is updated in place, nothing new, no error.
        published += publish(kafka_plain(env), patients_topic, patients)
        published += publish(kafka_sasl(env), clinical_topic, early + late)
        adt_published += publish(kafka_sasl(env), clinical_topic, adt)
        published += len(adt)
        wait_for(lambda: _settled(env, job_id, published, adt_published), 300, "re-published messages finished", 2)
        time.sleep(8)
        assert fhir_count(env, system) == PATIENTS + ADT
        assert _counts(env, system) == EXPECTED
        _adt_landed(env, system, events)
        assert _write_errors(env, clinical_topic) == []
        for stage in ("parse", "validate", "map"):
            assert ndjson_lines(env["GCS_ERROR_BUCKET"], f"errors/stage={stage}/topic={clinical_topic}/") == []
    finally:
        cancel_job(env, job_id)
