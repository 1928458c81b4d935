"""Which FHIR element paths exist, so that loading a mapping file can refuse an element its resource cannot
carry and say how to fix it, instead of the mistake surfacing as a validation error on every message.

Two sources, both on this machine, never the network:

- the US Core 6.1.0 package the repository carries (`include/fhir/`): which type a profile constrains and
  its snapshot element paths. Read once, on first use, keeping only those two things per profile.
- the fhir.resources R4B models: the element names at every depth, including the datatypes below the depth
  of a profile's snapshot (`identifier.type.coding.system`) and choice elements under their concrete JSON
  names (`valueQuantity`). fhir.resources 8 ships no R4 models; for the resources US Core profiles, R4B's
  elements are R4's (the unit tests check every snapshot path of every US Core profile against them).
"""

from __future__ import annotations

import difflib
import functools
import json
import sys
import tarfile
import typing
from dataclasses import dataclass
from types import UnionType

from beam_pipeline.shipped import shipped_path

_PROFILED_KINDS = frozenset({"resource", "complex-type"})
_PACKAGE = shipped_path("include/fhir", "hl7.fhir.us.core-6.1.0.tgz")


class _AnyResource:
    """A slot whose type the value's own resourceType chooses (contained, Bundle.entry.resource): a path alone
    cannot check what lies below it."""


# What a JSON element holds: the model class of a complex type or backbone element, the FHIR name of a
# primitive type, or _ANY_RESOURCE.
_ANY_RESOURCE = _AnyResource()
_Target = type | str | _AnyResource

# Where R4B's elements differ from R4's, the store's version: R4B's Extension.value[x] gained CodeableReference
# and RatioRange (datatypes new in R4B) and lost Meta. The US Core package's extension snapshots repeat R4's
# list, and a unit test compares the two. (Other open-type elements, Parameters and Task values, keep R4B's.)
_R4B_ONLY = {"Extension": frozenset({"valueCodeableReference", "valueRatioRange"})}
_R4_ONLY = {"Extension": {"valueMeta": "Meta"}}

# fhir_core's validator names that are not the FHIR primitive's name
_PRIMITIVE_NAMES = {"EncodedBytes": "base64Binary", "UuidVersion": "uuid", "bool": "boolean"}


@dataclass(frozen=True)
class _Profile:
    type: str
    elements: frozenset[str]
    required: tuple[str, ...] = ()  # top-level elements with min >= 1, in snapshot order
    patient_reference: str | None = None  # the required element that refers to a US Core Patient


_US_CORE_PATIENT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"


def _required(definition: dict) -> tuple[tuple[str, ...], str | None]:
    required, patient = [], None
    for element in definition["snapshot"]["element"]:
        path, ident = element["path"], element.get("id", "")
        if path.count(".") != 1 or ":" in ident or element.get("min", 0) < 1:
            continue
        name = path.split(".", 1)[1]
        required.append(sys.intern(name))
        targets = [t for kind in element.get("type", []) for t in kind.get("targetProfile", [])]
        if patient is None and _US_CORE_PATIENT in targets:
            patient = name
    return tuple(required), patient


def required_elements(profile_url: str) -> tuple[tuple[str, ...], str | None]:
    """The profile's top-level elements with min >= 1 (choice elements as `value[x]`), and the name of the
    required one that refers to a US Core Patient (subject, patient), if any; KeyError for an unknown URL."""
    profile = _profiles().get(profile_url)
    if profile is None:
        raise KeyError(f"{profile_url} is not a US Core 6.1.0 profile")
    return profile.required, profile.patient_reference


def profile_type(profile_url: str) -> str | None:
    """The type a mapping file's claimed profile constrains, so the file's resourceType can be checked against
    it; None when US Core 6.1.0 has no such profile (a misspelt or foreign URL). A `|6.1.0` version suffix is
    accepted, as meta.profile may carry it. Extension definitions give "Extension"."""
    profile = _profiles().get(profile_url)
    return profile.type if profile else None


def profile_elements(profile_url: str) -> frozenset[str]:
    """The profile's snapshot element paths (`Patient.identifier.system`, slices folded into their path), for
    checks that need the profile rather than the base resource. Raises KeyError for a URL that is not a US
    Core 6.1.0 profile: an empty set would read as "a profile with no elements"."""
    profile = _profiles().get(profile_url)
    if profile is None:
        raise KeyError(f"{profile_url} is not a US Core 6.1.0 profile")
    return profile.elements


def unknown_element(resource_type: str, path: tuple[str, ...]) -> str | None:
    """None when every step of `path` (JSON element names from the resource root) names an element of the
    step before it; else a message naming the first step that does not, with the likely fix, so a mapping
    file fails at load with a sentence its author can act on.

    Primitive extensions (`_birthDate`) are not elements a mapping file writes, so they are refused; below a
    slot that holds any resource (`contained`) nothing can be checked without the value, so anything passes.
    """
    return _unknown_element(resource_type, tuple(path))


@functools.lru_cache(maxsize=8192)
def _unknown_element(resource_type: str, path: tuple[str, ...]) -> str | None:
    model = _resource_model(resource_type)
    if model is None:
        return _not_a_resource(resource_type)
    if path[:1] == ("resourceType",):
        return None if len(path) == 1 else _primitive_has_no_children(f"{resource_type}.resourceType", "code", path[1])
    target: _Target = model
    walked = resource_type
    for step in path:
        if target is _ANY_RESOURCE:
            return None
        if isinstance(target, str):
            return _primitive_has_no_children(walked, target, step)
        children, choices = _children(typing.cast(type, target))
        if step not in children:
            return _missing(walked, step, children, choices)
        target = children[step]
        walked = f"{walked}.{step}"
    return None


def _missing(walked: str, step: str, children: dict[str, _Target], choices: dict[str, tuple[str, ...]]) -> str:
    base = step.removesuffix("[x]")
    if base in choices:
        options = ", ".join(f"'{name}'" for name in choices[base])
        return f"{walked}.{step} does not exist: a choice element is written with its type, one of {options}"
    close = difflib.get_close_matches(step, children, n=3)
    if close:
        return f"{walked}.{step} does not exist: did you mean {' or '.join(repr(name) for name in close)}?"
    names = sorted([name for name in children if not _in_choice(name, choices)] + [f"{b}[x]" for b in choices])
    return f"{walked}.{step} does not exist: the elements of {walked} are {', '.join(names)}"


def _in_choice(name: str, choices: dict[str, tuple[str, ...]]) -> bool:
    return any(name in names for names in choices.values())


def _primitive_has_no_children(walked: str, primitive: str, step: str) -> str:
    article = "an" if primitive[:1] in "aeiou" else "a"
    return (
        f"{walked}.{step} does not exist: {walked.rsplit('.', 1)[-1]} is {article} {primitive}, a primitive with "
        "no child elements; write its value directly"
    )


def _not_a_resource(resource_type: str) -> str:
    close = [name for name in difflib.get_close_matches(resource_type, _model_names(), n=10) if _resource_model(name)]
    hint = f": did you mean {' or '.join(repr(name) for name in close[:3])}?" if close else ""
    return f"{resource_type} is not a FHIR resource type{hint}"


@functools.cache
def _profiles() -> dict[str, _Profile]:
    # Only resource and datatype profiles, and of each only its type and element paths: the package's
    # value sets, search parameters and full element definitions are not needed here and would stay in memory.
    profiles: dict[str, _Profile] = {}
    with tarfile.open(_PACKAGE, "r:gz") as archive:
        for member in archive:
            name = member.name
            if not (member.isfile() and name.startswith("package/StructureDefinition-") and name.endswith(".json")):
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            definition = json.load(source)
            if definition.get("derivation") != "constraint" or definition.get("kind") not in _PROFILED_KINDS:
                continue
            required, patient = _required(definition)
            profile = _Profile(
                type=sys.intern(definition["type"]),
                elements=frozenset(sys.intern(element["path"]) for element in definition["snapshot"]["element"]),
                required=required,
                patient_reference=patient,
            )
            profiles[definition["url"]] = profile
            if definition.get("version"):
                profiles[f"{definition['url']}|{definition['version']}"] = profile
    return profiles


@functools.cache
def _resource_model(resource_type: str) -> type | None:
    try:
        model = _model(resource_type)
    except ValueError:
        return None
    return model if issubclass(model, _model("Resource")) else None


@functools.cache
def _model_names() -> tuple[str, ...]:
    # Every model fhir.resources R4B has (resources, datatypes, backbone elements), by name; only for
    # suggestions after a miss, which then keep the resources.
    from fhir.resources.R4B import fhirtypes

    return tuple(
        name.removesuffix("Type")
        for name in dir(fhirtypes)
        if name.endswith("Type") and hasattr(getattr(fhirtypes, name), "_model_klass")
    )


@functools.cache
def _children(model: type) -> tuple[dict[str, _Target], dict[str, tuple[str, ...]]]:
    """A model's elements by JSON name (`class`, not the Python field name `class_fhir`) with what each
    holds, and its choice groups (`value` -> valueQuantity, valueString...). Fields that are not elements
    (`fhir_comments`, the `_birthDate` primitive extensions) are left out."""
    children: dict[str, _Target] = {}
    choices: dict[str, list[str]] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        json_name = field.alias or name
        children[json_name] = _target(field.annotation)
        group = extra.get("one_of_many")
        if isinstance(group, str):
            choices.setdefault(group, []).append(json_name)
    type_name = getattr(model, "__resource_type__", "")
    for json_name in _R4B_ONLY.get(type_name, ()):
        del children[json_name]
        choices["value"].remove(json_name)
    for json_name, datatype in _R4_ONLY.get(type_name, {}).items():
        children[json_name] = _model(datatype)
        choices["value"].append(json_name)
    return children, {group: tuple(sorted(names)) for group, names in choices.items()}


def _model(name: str) -> type:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(name)


def _target(annotation: object) -> _Target:
    from fhir_core.types import FhirBase

    while True:
        if isinstance(annotation, type) and issubclass(annotation, FhirBase):
            model = annotation.get_model_klass()
            return _ANY_RESOURCE if model is _model("Resource") else model
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            validator = type(typing.get_args(annotation)[1]).__name__
            return _PRIMITIVE_NAMES.get(validator, validator[:1].lower() + validator[1:])
        if origin in (typing.Union, UnionType, list):
            annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
            continue
        name = getattr(annotation, "__name__", str(annotation))
        return _PRIMITIVE_NAMES.get(name, name)
