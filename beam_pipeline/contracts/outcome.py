"""What transforming one raw message gives: ok (resources), filtered (a reason), or error (stage, code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from beam_pipeline.contracts.error_record import INTERNAL_ERROR

if TYPE_CHECKING:  # the validator imports the mapping engine, which imports these outcome types
    from beam_pipeline.us_core.conformance import ProfileIssue

# Stages, in the order a message passes them. They name error records' `stage` too. A mapped resource's
# check against the profiles it claims (--profile_validation) comes after the map but is a validation, so
# its records are `validate` ones (code profile_violation).
PARSE = "parse"
VALIDATE = "validate"
MAP = "map"
WRITE = "write"  # the write step's codes are the FHIR store client's (fhir_store/errors.py)
# A reprocess's reading of the archive or raw files (beam_pipeline/reprocess.py): before any message exists.
REPROCESS = "reprocess"
CORRUPT_ARCHIVE_LINE = "corrupt_archive_line"
UNREADABLE_OBJECT = "unreadable_object"

# What the write step did with a message it settled, one per message: its counter is
# write_to_fhir_store/messages_<outcome> (transforms/write.py settled_as decides).
WRITE_METRICS = "write_to_fhir_store"
WRITTEN_OUTCOME = "written"  # the store changed at least one of its resources
SUPERSEDED_OUTCOME = "superseded"  # else: the store holds newer data for one (older never overwrites newer)
UNCHANGED_OUTCOME = "unchanged"  # else: the store already held exactly this content
SETTLED_OUTCOMES = (WRITTEN_OUTCOME, SUPERSEDED_OUTCOME, UNCHANGED_OUTCOME)
# The DeadLetter step counts each error record as dead_letter/<stage>.<code>.
DEAD_LETTER_METRICS = "dead_letter"

# Error codes (machine-readable; `detail` names fields, never values).
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
TOO_LARGE = "too_large"
EMPTY_MESSAGE = "empty_message"
INVALID_NUMBER = "invalid_number"
DUPLICATE_KEY = "duplicate_key"
TOO_DEEP = "too_deep"
LONE_SURROGATE = "lone_surrogate"
MISSING_SOURCE_ID = "missing_source_id"
NO_USABLE_NAME = "no_usable_name"
INVALID_DATE = "invalid_date"
INVALID_FIELD_TYPE = "invalid_field_type"
INVALID_CHARACTERS = "invalid_characters"
UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
# Clinical rows (encounter, condition, observation, ...).
MISSING_REQUIRED_FIELD = "missing_required_field"
UNKNOWN_CODE = "unknown_code"
NON_NUMERIC_VALUE = "non_numeric_value"
US_CORE_RULES = "us_core_rules"
STRUCTURE_INVALID = "structure_invalid"
MAPPING_FAILED = "mapping_failed"
# A mapped resource breaks a profile it claims (--profile_validation=enforce); the detail lists the element
# paths and the profile's rule keys.
PROFILE_VIOLATION = "profile_violation"

# The codes a mapping file's checks may give (`code:` in a mapping's `validate`).
MAPPING_CHECK_CODES = (
    MISSING_SOURCE_ID,
    NO_USABLE_NAME,
    INVALID_DATE,
    INVALID_FIELD_TYPE,
    INVALID_CHARACTERS,
    UNKNOWN_MESSAGE_TYPE,
    MISSING_REQUIRED_FIELD,
    UNKNOWN_CODE,
    NON_NUMERIC_VALUE,
    MAPPING_FAILED,
)

ERROR_CODES = {
    PARSE: (
        INVALID_UTF8,
        INVALID_JSON,
        NOT_AN_OBJECT,
        TOO_LARGE,
        EMPTY_MESSAGE,
        INVALID_NUMBER,
        DUPLICATE_KEY,
        TOO_DEEP,
        LONE_SURROGATE,
        INTERNAL_ERROR,
    ),
    # internal_error here: the profile validator raised (a bug of the validator, never of the message).
    VALIDATE: (*MAPPING_CHECK_CODES, PROFILE_VIOLATION, INTERNAL_ERROR),
    MAP: (US_CORE_RULES, STRUCTURE_INVALID, MAPPING_FAILED, INTERNAL_ERROR),
}


@dataclass(frozen=True)
class MappedResource:
    resource: dict[str, Any]
    # The business identifier (system, value) that makes the write idempotent (conditional update).
    identifier: tuple[str, str] | None


@dataclass(frozen=True)
class Ok:
    resources: tuple[MappedResource, ...]
    # What profile validation found that did not stop the message (--profile_validation=warn: its errors;
    # either mode: warnings). Not part of the outcome's JSON: the dry run prints them beside it.
    issues: tuple[ProfileIssue, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"status": "ok", "resources": [r.resource for r in self.resources]}


@dataclass(frozen=True)
class Filtered:
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"status": "filtered", "reason": self.reason}


@dataclass(frozen=True)
class Error:
    stage: str
    code: str
    detail: str
    # profile_violation: the issues its detail lists, for the dry run to print one per line.
    issues: tuple[ProfileIssue, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"status": "error", "stage": self.stage, "code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class Parsed:
    """A message that passed parsing, validation and filters, with the mapper chosen for it."""

    record: dict[str, Any] = field(repr=False)
    message_type: str
    # The mapping's variables for this record, computed while validating; mapping reuses them. None after
    # the message crossed a step boundary without them (they are computed again).
    env: dict[str, Any] | None = field(default=None, repr=False, compare=False)


Outcome = Ok | Filtered | Error
