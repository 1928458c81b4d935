"""A cancelled local job stops reading Kafka: it commits no offset for messages published after the cancel.

The restart phase of test_pipeline_e2e.py once lost about half of the messages published while the job was
stopped: the cancelled job's Java harness (a thread in a shared JVM that Beam's ExternalWorkerService never
stops) kept polling, and its consumer's auto-commit moved the group past messages it never delivered, so
the restarted job skipped them. Here the job auto-commits every 100 ms and messages keep arriving from the
moment the cancel is asked for, so a consumer left running commits past them at once: with the old pool
this failed 4 runs of 4, where the default 5 s interval let it fail about one run in three.
"""

from __future__ import annotations

import time
import uuid

import pytest

from launcher.job_service import JobServiceClient
from tests.integration.test_pipeline_e2e import _valid
from tests.support.local_stack import (
    cancel_job,
    create_topics,
    fhir_count,
    group_offsets,
    kafka_plain,
    launch_local_job,
    publish,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_a_cancelled_job_commits_nothing_published_after_the_cancel(env):
    run = uuid.uuid4().hex[:8]
    topic, group, system = f"cancel-{run}", f"cancel-{run}", f"urn:k2f-cancel:{run}"
    create_topics(kafka_plain(env), [topic])
    publish(kafka_plain(env), topic, _valid(run, 0, 20))
    # Auto-commit every 100 ms instead of 5 s, so a consumer left running commits whatever it polls at once.
    job_id = launch_local_job(
        env,
        f"cancel-{run}",
        [topic],
        f"--kafka_consumer_group={group}",
        f"--source_id_system={system}",
        "--kafka_consumer_property=auto.commit.interval.ms=100",
        "--archive_window_seconds=5",  # offsets are committed once messages are archived too
    )
    jobs = JobServiceClient(env["PRISM_ENDPOINT"])
    try:
        wait_for(lambda: fhir_count(env, system) >= 20, 300, "the first 20 Patients in HAPI", poll=2)

        def all_committed() -> bool:
            return all(committed == end for committed, end in group_offsets(kafka_plain(env), group, [topic]).values())

        wait_for(all_committed, 60, "the job to commit the offsets of what it read", poll=1)
        at_cancel = group_offsets(kafka_plain(env), group, [topic])
        jobs.cancel(job_id)
        # Messages keep arriving from the moment the cancel is asked for: a consumer left running would poll
        # them and commit past them.
        for step in range(30):
            publish(kafka_plain(env), topic, _valid(run, 20 + step, 1))
            time.sleep(0.1)
        assert jobs.wait_for(job_id, {"CANCELLED"}, 60) == "CANCELLED"
        time.sleep(2)
        after = group_offsets(kafka_plain(env), group, [topic])
    finally:
        cancel_job(env, job_id)
        jobs.close()

    assert sum(end for _, end in after.values()) == 50
    assert {tp: committed for tp, (committed, _) in after.items()} == {
        tp: committed for tp, (committed, _) in at_cancel.items()
    }, "offsets were committed for messages published after the cancel: a restart would skip them"
