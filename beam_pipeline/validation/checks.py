"""The compiled form of a profile, as it runs: per complex value a Complex (its fields by JSON name, required
and must-support elements, choice groups, invariants, rules), per JSON name a Field (array or single, its
item check, slices, and the fast path of a primitive). compiler.py builds them; specialise.py writes a
Complex out as one generated function."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from beam_pipeline.validation import invariants
from beam_pipeline.validation.issues import ERROR, INFORMATION, Check, Issue
from beam_pipeline.validation.primitives import CHECKS
from beam_pipeline.validation.remembered import remembered

if TYPE_CHECKING:
    from beam_pipeline.validation.slicing import SliceMatcher

TEXT_TYPES = frozenset(
    name for name in CHECKS if name not in ("boolean", "integer", "positiveInt", "unsignedInt", "decimal")
)
_NO_VALUE = object()


class Complex:
    """The checks of one complex value: its fields by JSON name, required and must-support elements,
    invariants, and the slicings of its array elements."""

    __slots__ = (
        "choices", "extension", "fields", "invariants", "must_support", "must_support_keys", "required",
        "required_keys", "root", "rules", "run", "terminology",
    )  # fmt: skip

    def __init__(self) -> None:
        self.fields: dict[str, Field] = {}
        self.required: tuple[tuple[str, tuple[str, ...], int], ...] = ()
        self.must_support: tuple[tuple[str, tuple[str, ...]], ...] = ()
        # The same split for speed: a plain element needed once is one `in` test; choices and minimums
        # above 1 are counted.
        self.required_keys: tuple[str, ...] = ()
        self.must_support_keys: tuple[str, ...] = ()
        self.invariants: tuple[tuple[str, str, invariants.Invariant], ...] = ()
        self.choices: tuple[tuple[str, frozenset[str]], ...] = ()  # choice elements: at most one JSON name
        self.extension = False  # an Extension: ext-1 is checked natively
        # The generated check (specialise.py), once the Complex is complete; until then `check` serves.
        self.run: Check | None = None
        self.root = False
        # A Coding: its values are terminology, never patient data, and repeat across messages, so the
        # generated check may remember the ones that passed (specialise.py).
        self.terminology = False
        self.rules: tuple[Check, ...] = ()  # checks of the whole value (a Coding's code in its code system)

    @property
    def fastest(self) -> Check:
        return self.run or self.check

    def set_elements(
        self, required: list[tuple[str, tuple[str, ...], int]], must_support: list[tuple[str, tuple[str, ...]]]
    ) -> None:
        self.required_keys = tuple(keys[0] for name, keys, least in required if keys == (name,) and least == 1)
        self.required = tuple(r for r in required if not (r[1] == (r[0],) and r[2] == 1))
        self.must_support_keys = tuple(keys[0] for name, keys in must_support if keys == (name,))
        self.must_support = tuple(m for m in must_support if m[1] != (m[0],))

    def check(self, obj: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
        if type(obj) is not dict:
            issues.append(Issue(path, "type", ERROR, "expected an object"))
            return
        if not obj or (len(obj) == 1 and "id" in obj):
            issues.append(Issue(path, "ele-1", ERROR, "an element needs a value or children"))
        fields = self.fields
        for key, value in obj.items():
            field = fields.get(key)
            if field is not None:
                if type(value) is not list:
                    fast = field.fast
                    if fast is not None:
                        # Most values: a single primitive with no rule but its format, its path built on failure.
                        if not fast(value):
                            field.bad(value, f"{path}.{key}", issues)
                        continue
                    single = field.single
                    if single is not None:
                        single(value, f"{path}.{key}", issues, ms, env)
                        continue
                field.check(value, path, issues, ms, env)
            elif key[:1] == "_" and key[1:] in fields:
                primitive_element(value, f"{path}.{key}", issues, ms, env)
            elif not (self.root and key == "resourceType"):
                issues.append(Issue(f"{path}.{key}", "structure", ERROR, "not an element of this type"))
        if self.extension:
            # ext-1: an extension has nested extensions or a value, never both and never neither.
            has_value = False
            for key in obj:
                if key[:5] == "value":
                    has_value = True
                    break
            if has_value == ("extension" in obj):
                issues.append(Issue(path, "ext-1", ERROR, "an extension needs a value or nested extensions, not both"))
        for name, keys in self.choices:
            if len(keys.intersection(obj)) > 1:
                issues.append(Issue(f"{path}.{name}", "cardinality", ERROR, "more than one type of a choice element"))
        for key in self.required_keys:
            if key not in obj and f"_{key}" not in obj:
                issues.append(Issue(f"{path}.{key}", "cardinality", ERROR, "minimum 1, found 0"))
        for key in self.must_support_keys:
            if key not in obj:
                ms.append(Issue(f"{path}.{key}", "must-support", INFORMATION, "must-support element absent"))
        self.counted(obj, path, issues, ms)
        for key, severity, holds in self.invariants:
            try:
                ok = holds(obj, env)
            except Exception:  # noqa: BLE001  (an invariant that cannot run on odd data fails, never the walk)
                ok = False
            if not ok:
                issues.append(Issue(path, key, severity, "invariant not satisfied"))
        for rule in self.rules:
            rule(obj, path, issues, ms, env)

    def relink(self) -> None:
        """Once compiling is over: its fields' checks without the wait for a Complex being compiled."""
        for field in self.fields.values():
            field.relink()

    def counted(self, obj: dict[str, Any], path: str, issues: list[Issue], ms: list[Issue]) -> None:
        """Minimums above one and choice elements: required and must-support by counting."""
        for name, keys, least in self.required:
            count = 0
            for key in keys:
                value = obj.get(key)
                if value is not None:
                    count += len(value) if type(value) is list else 1
            if count < least and any(f"_{key}" in obj for key in keys):
                count = least  # a primitive present by its extensions only (a data-absent-reason)
            if count < least:
                issues.append(Issue(f"{path}.{name}", "cardinality", ERROR, f"minimum {least}, found {count}"))
        for name, keys in self.must_support:
            for key in keys:
                if key in obj:
                    break
            else:
                ms.append(Issue(f"{path}.{name}", "must-support", INFORMATION, "must-support element absent"))


class Field:
    """One JSON name of a complex value: array or single, its item check, and its slices."""

    __slots__ = (
        "detail", "each", "each_valid", "fast", "is_list", "item", "limit", "maximum", "name", "on_fail", "single",
        "slicing", "text_key", "valid",
    )  # fmt: skip

    def __init__(self, name: str, is_list: bool, maximum: int | None, item: Check) -> None:
        self.name = name
        self.is_list = is_list
        self.maximum = maximum
        self.item = item
        self.slicing: SliceMatcher | None = None
        # A primitive with no rule but its format: its test alone, so a value is one call (set_primitive).
        self.valid: Callable[[Any], bool] | None = None
        self.fast: Callable[[Any], bool] | None = None
        self.single: Check | None = None  # the item check of a single value without slices
        self.on_fail: Check | None = None  # what reports a value `fast` refused, when not `detail` alone
        # An array without slices, for the generated checks to walk in place: its item check (`each`), or its
        # primitive's test (`each_valid`), and the most items it may have.
        self.each: Check | None = None
        self.each_valid: Callable[[Any], bool] | None = None
        self.limit = maximum if maximum is not None else sys.maxsize
        self.detail = self.text_key = ""

    def finish(self, primitive: str | None) -> None:
        """Work out the fast paths once the field is complete (`primitive`: its type, when the item check
        is that primitive's format alone)."""
        plain = not self.is_list and self.slicing is None
        self.single = self.item if plain else None
        fixed = getattr(self.item, "fixed_value", _NO_VALUE)
        passes = getattr(self.item, "passes", None)
        if plain and fixed is not _NO_VALUE:
            # A fixed primitive (an extension's url, a slice's system): equal is valid; anything else gets
            # the whole item check to say why.
            kind = type(fixed)
            self.fast = lambda value: type(value) is kind and value == fixed
            self.on_fail = self.item
        elif plain and passes is not None:
            # A primitive with a rule (a code and its binding): a value the test passes gets no issue from
            # the item check; anything else gets the item check.
            self.fast = passes
            self.on_fail = self.item
        elif primitive is not None:
            self.valid = CHECKS[primitive]
            self.fast = self.valid if plain else None
            self.detail = f"not a valid {primitive.rsplit('.', 1)[-1]}"
            self.text_key = "format" if primitive in TEXT_TYPES else "type"
        if self.is_list and self.slicing is None:
            self.each_valid = self.valid
            self.each = self.item if self.valid is None else None

    def relink(self) -> None:
        """Item checks that waited for a Complex still being compiled, replaced by its check (compiled now)."""
        self.item = resolved(self.item)
        if self.single is not None:
            self.single = resolved(self.single)
        if self.each is not None:
            self.each = resolved(self.each)
        if self.on_fail is not None:
            self.on_fail = resolved(self.on_fail)
        if self.slicing is not None:
            self.slicing.relink()

    def bad(self, value: Any, path: str, issues: list[Issue]) -> None:  # noqa: ANN401
        if self.on_fail is not None:
            self.on_fail(value, path, issues, [], {})
            return
        issues.append(Issue(path, self.text_key if type(value) is str else "type", ERROR, self.detail))

    def check(self, value: Any, parent: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
        name = self.name
        if not self.is_list:
            if type(value) is list:
                issues.append(Issue(f"{parent}.{name}", "type", ERROR, "expected a single value, not an array"))
                return
            if self.slicing is not None:
                self.slicing.check([value], parent, name, False, issues, ms, env)
            else:
                self.item(value, f"{parent}.{name}", issues, ms, env)
            return
        if type(value) is not list:
            issues.append(Issue(f"{parent}.{name}", "type", ERROR, "expected an array"))
            return
        if not value:
            issues.append(Issue(f"{parent}.{name}", "ele-1", ERROR, "an array needs items"))
            return
        if self.maximum is not None and len(value) > self.maximum:
            issues.append(
                Issue(f"{parent}.{name}", "cardinality", ERROR, f"maximum {self.maximum}, found {len(value)}")
            )
        if self.slicing is not None:
            self.slicing.check(value, parent, name, True, issues, ms, env)
            return
        valid = self.valid
        if valid is not None:
            for i, entry in enumerate(value):
                if not valid(entry):
                    self.bad(entry, f"{parent}.{name}[{i}]", issues)
            return
        item = self.item
        for i, entry in enumerate(value):
            item(entry, f"{parent}.{name}[{i}]", issues, ms, env)


class RememberedField(Field):
    """A Field whose whole array is checked through remembered() (remembered.py): a Patient's extensions
    (race, ethnicity, birth sex) repeat as a whole, and their slices cost as much as the extensions."""

    __slots__ = ("_remembered",)

    def __init__(self, name: str, is_list: bool, maximum: int | None, item: Check) -> None:  # noqa: FBT001
        super().__init__(name, is_list, maximum, item)
        self._remembered = remembered(functools.partial(Field.check, self))

    def check(self, value: Any, parent: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
        self._remembered(value, parent, issues, ms, env)


_ELEMENT_CHECK: list[Check] = []  # Element's check, once a Compiler has compiled it (the same in every package)


def primitive_element(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
    """A primitive's `_name`: its id and extensions, an object (or for an array, objects and nulls)."""
    if not _ELEMENT_CHECK:
        return
    check = _ELEMENT_CHECK[0]
    if type(value) is list:
        for i, item in enumerate(value):
            if item is not None:
                check(item, f"{path}[{i}]", issues, ms, env)
    else:
        check(value, path, issues, ms, env)


def linked(complex_: Complex) -> Check:
    """The generated check of a Complex; for one still being compiled (a recursive structure), a
    function that takes the generated check once there is one."""
    if complex_.run is not None:
        return complex_.run

    def later(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
        (complex_.run or complex_.check)(value, path, issues, ms, env)

    later.target = complex_  # type: ignore[attr-defined]  (for `resolved`)
    return later


def resolved(check: Check) -> Check:
    """`check`, or for one `linked` made before its Complex was compiled, that Complex's check: one call
    less per value once compiling is over."""
    target = getattr(check, "target", None)
    return check if target is None else target.fastest


def set_element_check(check: Check) -> None:
    """Element's check (for a primitive's `_name`): the same in every package, kept from the first compile."""
    _ELEMENT_CHECK[:] = [check]
