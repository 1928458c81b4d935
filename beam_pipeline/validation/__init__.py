"""US Core profile validation compiled from the implementation guide (docs/validation.md).

from beam_pipeline.validation import validate
result = validate(resource, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient")
# result.issues: [Issue(path, key, severity, detail)], result.must_support, result.not_checked
"""

from beam_pipeline.validation.issues import ERROR, INFORMATION, WARNING, Issue, NotChecked, Result
from beam_pipeline.validation.validator import ProfileValidator, guide_profiles, validate, validator_for

__all__ = [
    "ERROR",
    "INFORMATION",
    "WARNING",
    "Issue",
    "NotChecked",
    "ProfileValidator",
    "Result",
    "guide_profiles",
    "validate",
    "validator_for",
]
