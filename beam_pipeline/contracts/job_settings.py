"""Settings the launch DAG passes and the pipeline reads: the job's default name and consumer group, and
how a list is written in one flag (topics, program names)."""

from __future__ import annotations

# The launch DAG's "no job of this name is running" check depends on a stable name.
DEFAULT_JOB_NAME = "kafka-to-fhir"
# One streaming job per consumer group, so by default the group is named after the job.
DEFAULT_CONSUMER_GROUP = DEFAULT_JOB_NAME
# A reprocess (python -m beam_pipeline.reprocess) runs beside the streaming job, under its own name.
DEFAULT_REPROCESS_JOB_NAME = f"{DEFAULT_JOB_NAME}-reprocess"


def comma_list(value: str | None) -> list[str]:
    """`"a, b,,c"` -> ["a", "b", "c"]: the form of --topics and --filter_program_names."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


# --profile_validation: what becomes of a mapped resource that breaks a profile it claims (meta.profile).
# off: not validated; warn: written, and counted per profile and rule; enforce: an error record
# (validate/profile_violation) instead of the write.
PROFILE_VALIDATION_OFF = "off"
PROFILE_VALIDATION_WARN = "warn"
PROFILE_VALIDATION_ENFORCE = "enforce"
PROFILE_VALIDATION_MODES = (PROFILE_VALIDATION_OFF, PROFILE_VALIDATION_WARN, PROFILE_VALIDATION_ENFORCE)
DEFAULT_PROFILE_VALIDATION = PROFILE_VALIDATION_ENFORCE
