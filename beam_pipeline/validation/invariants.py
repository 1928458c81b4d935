"""A profile's FHIRPath invariants (`constraint.expression`) as Python functions, through the project's
FHIRPath compiler (beam_pipeline/mapping/fhirpath.py) with a FHIR-aware name lookup.

The mapping compiler reads raw records: it strips text and reads numbers as text, and knows no choice
elements. Over a FHIR resource a name must find `valueQuantity` for `value`, and numbers stay numbers, so
the compiled code runs with `get`/`nav` replaced. What the compiler refuses (`is`, `as`, `ofType`,
`resolve()`, `extension(url)`, `htmlChecks()`...) comes back as None: the caller lists it as not checked.
Ordering comparisons are only decided here on numbers; a dateTime comparison needs its time zone, so those
invariants have native versions (per-1) or are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from beam_pipeline.mapping import runtime
from beam_pipeline.mapping.fhir_datetime import parse_moment
from beam_pipeline.mapping.fhirpath import FhirPathError, compile_expression
from beam_pipeline.validation.ucum import UCUM

Invariant = Callable[[Any, dict[str, list[Any]]], bool]
_FOCUS = "x"
# Variables FHIR defines for invariants that the validator provides (per resource: resource, rootResource).
VARIABLES = frozenset({"resource", "rootResource", "ucum", "sct", "loinc"})
_CONSTANTS = {"ucum": ["http://unitsofmeasure.org"], "sct": ["http://snomed.info/sct"], "loinc": ["http://loinc.org"]}
# Ordering on text only means something for numbers; these operators over elements need typed values.
_ORDERING = re.compile(r"(?<![<>!=])(<=|>=|<|>)(?!=)")


def _values(value: Any) -> list[Any]:  # noqa: ANN401  (any JSON)
    if value is None:
        return []
    if type(value) is list:
        return [v for v in value if v is not None]
    return [value]


def _choice(item: dict[str, Any], name: str) -> list[Any]:
    # `value` of a resource is the one valueXxx key; JSON never has two of a choice.
    cut = len(name)
    for key, value in item.items():
        if len(key) > cut and key.startswith(name) and key[cut].isupper():
            return _values(value)
    return []


# The names of choice elements (`value`, `effective`) across the loaded definitions: only these need the
# scan for a concrete key when absent. Filled before the first invariant compiles.
_CHOICES: set[str] = set()


def fhir_get(item: Any, name: str) -> list[Any]:  # noqa: ANN401
    if type(item) is dict:
        value = item.get(name)
        if value is None:
            return _choice(item, name) if name in _CHOICES else []
        return _values(value)
    return []


def fhir_nav(collection: list[Any], name: str) -> list[Any]:
    out: list[Any] = []
    for item in collection:
        out.extend(fhir_get(item, name))
    return out


NAMESPACE: dict[str, Any] = {**runtime.NAMESPACE, "get": fhir_get, "nav": fhir_nav, "tx": None}


def _period(item: Any, env: dict[str, list[Any]]) -> bool:  # noqa: ANN401, ARG001
    # per-1: start <= end, compared as instants when both carry a zone, else by date at the coarser precision.
    if type(item) is not dict or type(item.get("start")) is not str or type(item.get("end")) is not str:
        return True
    start, end = parse_moment(item["start"], partial=True), parse_moment(item["end"], partial=True)
    if start is None or end is None:
        return True  # the format check reports it
    return not end.before(start)


def _ucum_quantity(item: Any, env: dict[str, list[Any]]) -> bool:  # noqa: ANN401, ARG001
    # us-core-3: `value.ofType(Quantity).system` is UCUM when given. On the Observation (screening and
    # assessment) `value` is the valueQuantity; on Observation.value[x] (lab, clinical result, smoking
    # status) it is the Quantity's own decimal, so it always holds there, as the reference validator finds.
    quantity = item.get("valueQuantity") if type(item) is dict else None
    return type(quantity) is not dict or quantity.get("system", UCUM) == UCUM


NATIVE: dict[str, Invariant] = {"per-1": _period, "us-core-3": _ucum_quantity}


def _text_at_least(length: int) -> Callable[[Any], bool]:
    def holds(value: Any) -> bool:  # noqa: ANN401
        return type(value) is not str or len(value) >= length  # not text: the type check reports it

    return holds


# Invariants on a primitive value, by key and the type they constrain. vs-1 and us-core-1 ask an
# Observation's effective dateTime for a day (`($this as dateTime).toString().length() >= 8`, `$this is
# DateTime implies $this.toString().length() >= 10`); on the Period of the same choice they do not apply.
PRIMITIVE_NATIVE: dict[tuple[str, str], Callable[[Any], bool]] = {
    ("vs-1", "dateTime"): _text_at_least(8),
    ("us-core-1", "dateTime"): _text_at_least(10),
}
# R4 invariants whose ordering comparisons are between numbers (Quantity.value, Timing.period, a count).
_NUMERIC = frozenset({"age-1", "tim-4", "tim-5", "org-1"})
# Checked by the validator's own walk (every element, cheaper than FHIRPath's children()).
BUILT_IN = frozenset({"ele-1", "ext-1"})


def compile_invariant(key: str, expression: str) -> tuple[Invariant | None, str]:
    """A function (item, env) -> whether the invariant holds, or None with the reason it is not checked."""
    if not _CHOICES:
        _CHOICES.update(_choice_names())
    if key in NATIVE:
        return NATIVE[key], ""
    if key not in _NUMERIC and _ORDERING.search(re.sub(r"'(?:[^'\\]|\\.)*'", "''", expression)):
        return None, "compares values whose type the evaluator does not know (dates, quantities)"
    try:
        compiled = compile_expression(expression, _FOCUS, condition=True)
    except FhirPathError as error:
        return None, f"FHIRPath the evaluator does not support: {error}"
    except RecursionError:
        return None, "FHIRPath nested too deeply"
    unknown = compiled.variables - VARIABLES
    if unknown or compiled.value_sets or compiled.translations:
        return None, "uses variables or terminology the evaluator does not provide"
    source = f"lambda {_FOCUS}, env: {compiled.source}"
    holds = eval(source, dict(NAMESPACE))  # noqa: S307  (source the FHIRPath compiler generated)
    return _skipping_absent(holds, compiled.source, compiled.variables), ""


_ROOT_NAME = re.compile(rf"get\({_FOCUS}, '([A-Za-z_][A-Za-z0-9_]*)'\)")


def _skipping_absent(holds: Invariant, source: str, variables: frozenset[str]) -> Invariant:
    """Most invariants read elements most resources lack (dom-2 reads `contained`): when the focus has none
    of the names the expression starts from, its result is the one it has on an empty object, worked out
    here once."""
    names = tuple(dict.fromkeys(_ROOT_NAME.findall(source)))
    rest = _ROOT_NAME.sub("", source)
    if variables or not names or re.search(rf"\b{_FOCUS}\b", rest) or any(n in _CHOICES for n in names):
        return holds
    when_absent = bool(holds({}, {}))

    def skipping(item: Any, env: dict[str, list[Any]]) -> bool:  # noqa: ANN401
        for name in names:
            if name in item:
                return holds(item, env)
        return when_absent

    # For the generated checks (specialise.py), which write this test out.
    skipping.reads, skipping.whole, skipping.when_absent = names, holds, when_absent  # type: ignore[attr-defined]
    return skipping


def _choice_names() -> set[str]:
    from beam_pipeline.validation.package import definitions  # noqa: PLC0415  (only once, at compile)

    return {
        element["path"].rsplit(".", 1)[-1][:-3]
        for definition in definitions().structures.values()
        for element in definition["snapshot"]["element"]
        if element["path"].endswith("[x]")
    }


def environment(resource: dict[str, Any]) -> dict[str, list[Any]]:
    """The variables of one resource's invariants."""
    return {"resource": [resource], "rootResource": [resource], **_CONSTANTS}
