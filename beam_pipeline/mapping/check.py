"""Checking a mapping set before any job starts: read it, compile every mapping with the element checks,
map each mapping's samples and validate what they map to against the profiles it claims. The launch's
prerequisites, the pipeline's launcher and the dry-run CLI call this; its MappingError names the file, the
line and the fix."""

from __future__ import annotations

import json

from beam_pipeline.contracts.job_settings import PROFILE_VALIDATION_ENFORCE
from beam_pipeline.contracts.outcome import PROFILE_VIOLATION, Error
from beam_pipeline.mapping.feed import MappingError
from beam_pipeline.mapping.mapping_set import MappingSet, MappingSources, compile_set, read_folder, shipped
from beam_pipeline.validation.issues import ERROR


def load_checked(location: str | None = None) -> tuple[MappingSources, MappingSet]:
    """The set at `location` (a folder or gs:// prefix; None: the shipped one), checked and compiled."""
    sources = read_folder(location) if location else shipped()
    mapping_set = compile_set(sources, check_elements=True)
    map_samples(sources, mapping_set)
    return sources, mapping_set


def map_samples(sources: MappingSources, mapping_set: MappingSet) -> int:
    """Map every mapping's samples through the whole path, their resources validated against the profiles
    they claim whatever the job's --profile_validation; MappingError at the first that does not map to valid
    resources of its own mapping. Returns how many were mapped."""
    from beam_pipeline.us_core import Ok, TransformConfig, transform

    config = TransformConfig(
        mappings=sources, structural_validation=False, profile_validation=PROFILE_VALIDATION_ENFORCE
    )
    count = 0
    for mapping in mapping_set.mappings:
        for line, message in mapping.samples:
            result = transform(json.dumps(message).encode(), config=config)
            if isinstance(result, Error) and result.code == PROFILE_VIOLATION:
                raise MappingError(mapping.file, line, _violation(result))
            if not isinstance(result, Ok):
                outcome = result.to_json()
                what = outcome.get("reason") or f"{outcome.get('code')}: {outcome.get('detail')}"
                raise MappingError(
                    mapping.file,
                    line,
                    f"this sample does not map ({outcome['status']}, {what}); fix the mapping or the sample",
                )
            tags = {tag["code"] for r in result.resources for tag in r.resource["meta"]["tag"]}
            if tags != {mapping.tag["code"]}:
                raise MappingError(
                    mapping.file, line, "this sample is mapped by another mapping; check recognise.types"
                )
            count += 1
    return count


def _violation(error: Error) -> str:
    """The first error of the sample's resources: the profile, the element path and the rule, and the fix."""
    errors = [found for found in error.issues if found.issue.severity == ERROR]
    first, issue = errors[0], errors[0].issue
    others = f" (all {len(errors)}: {error.detail})" if len(errors) > 1 else ""
    return (
        f"this sample's resource {first.resource + 1} breaks profile {first.profile} at {issue.path}, rule "
        f"{issue.key} ({issue.detail}){others}; fix the resource's template so it writes {issue.path} as the "
        f"profile requires (or the sample, if it is the sample that is wrong); python -m beam_pipeline.dry_run "
        f"--mappings <this folder> shows every issue"
    )


def summary(sources: MappingSources, mapping_set: MappingSet) -> str:
    samples = sum(len(m.samples) for m in mapping_set.mappings)
    return (
        f"{len(mapping_set.mappings)} mappings and {len(sources.terminology)} terminology files compiled from "
        f"{sources.origin or 'the shipped set'}; {samples} samples mapped and valid against their profiles"
    )
