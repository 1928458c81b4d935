"""A StructureDefinition's snapshot compiled, once, into checks over a resource's JSON.

Everything the snapshot says is worked out here into tables and closures: for each complex value the
JSON names it may carry (choice elements under their concrete names, `valueQuantity`), which are arrays,
their cardinalities, types, fixed and pattern values, bindings as code tables, slices as matchers, and
invariants as compiled FHIRPath. Checking a resource then walks only the keys it has.

Below the depth a profile expands, a value is checked against its datatype's base definition (the R4 base
extract), compiled once and shared by every profile. An Extension is checked against the definition its
`url` names when the package carries it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from beam_pipeline.validation import invariants
from beam_pipeline.validation.issues import ERROR, INFORMATION, WARNING, Issue, NotChecked
from beam_pipeline.validation.package import Definitions
from beam_pipeline.validation.primitives import CHECKS, is_primitive
from beam_pipeline.validation.slicing import SliceMatcher, compile_slicing
from beam_pipeline.validation.specialise import specialise
from beam_pipeline.validation.terminology import code_systems, code_table
from beam_pipeline.validation.tree import Node, build
from beam_pipeline.validation.ucum import UCUM, is_ucum

# (value, path, issues, must-support findings, invariant variables)
Check = Callable[[Any, str, list[Issue], list[Issue], dict[str, list[Any]]], None]
_TEXT_TYPES = frozenset(
    name for name in CHECKS if name not in ("boolean", "integer", "positiveInt", "unsignedInt", "decimal")
)
_BOUND_TYPES = frozenset({"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"})
_RESOURCE_SLOTS = frozenset({"Resource", "DomainResource"})
_ELEMENT_TYPES = frozenset({"Element", "BackboneElement"})
_FHIRPATH_TYPES = "http://hl7.org/fhirpath/System."
_FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_NO_VALUE = object()
_QUANTITIES = frozenset({"Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity"})
_MAX_VALUE_SET = "http://hl7.org/fhir/StructureDefinition/elementdefinition-maxValueSet"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def type_code(kind: dict[str, Any]) -> str:
    """An ElementDefinition type's FHIR type: R4 snapshots give `id` and `url` elements the FHIRPath type
    System.String and name the FHIR one (Resource.id is an `id`) in an extension."""
    code = kind.get("code", "")
    if code.startswith(_FHIRPATH_TYPES):
        for extension in kind.get("extension", []):
            if extension.get("url") == _FHIR_TYPE:
                return extension.get("valueUrl") or extension.get("valueUri") or code
    return code


def _fixed_or_pattern(element: dict[str, Any]) -> tuple[str, Any] | None:
    for key, value in element.items():
        if key.startswith("fixed"):
            return "fixed", value
        if key.startswith("pattern"):
            return "pattern", value
    return None


def matches_pattern(value: Any, pattern: Any) -> bool:  # noqa: ANN401  (any JSON)
    """FHIR's pattern[x]: every property the pattern has, the value has with a matching value; each item
    of a pattern array is matched by some item of the value's array."""
    if type(pattern) is dict:
        return type(value) is dict and all(k in value and matches_pattern(value[k], p) for k, p in pattern.items())
    if type(pattern) is list:
        return type(value) is list and all(any(matches_pattern(v, p) for v in value) for p in pattern)
    return value == pattern


class Complex:
    """The checks of one complex value: its fields by JSON name, required and must-support elements,
    invariants, and the slicings of its array elements."""

    __slots__ = (
        "choices", "extension", "fields", "invariants", "must_support", "must_support_keys", "required",
        "required_keys", "root", "rules", "run",
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
        "detail", "fast", "is_list", "item", "maximum", "name", "on_fail", "single", "slicing", "text_key", "valid",
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
        self.detail = self.text_key = ""

    def finish(self, primitive: str | None) -> None:
        """Work out the fast paths once the field is complete (`primitive`: its type, when the item check
        is that primitive's format alone)."""
        plain = not self.is_list and self.slicing is None
        self.single = self.item if plain else None
        fixed = getattr(self.item, "fixed_value", _NO_VALUE)
        if plain and fixed is not _NO_VALUE:
            # A fixed primitive (an extension's url, a slice's system): equal is valid; anything else gets
            # the whole item check to say why.
            kind = type(fixed)
            self.fast = lambda value: type(value) is kind and value == fixed
            self.on_fail = self.item
        elif primitive is not None:
            self.valid = CHECKS[primitive]
            self.fast = self.valid if plain else None
            self.detail = f"not a valid {primitive.rsplit('.', 1)[-1]}"
            self.text_key = "format" if primitive in _TEXT_TYPES else "type"

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


def _maximum(element: dict[str, Any]) -> int | None:
    text = element.get("max", "*")
    return None if text == "*" else int(text)


def _is_list(element: dict[str, Any]) -> bool:
    # The JSON shape follows the base definition's cardinality, whatever the profile narrows it to.
    return element.get("base", {}).get("max", element.get("max", "1")) != "1"


class Compiler:
    """Compiles StructureDefinitions of one Definitions; datatype and extension checks are shared."""

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._by_url: dict[str, Complex] = {}
        self._not_checked: dict[int, list[NotChecked]] = {}  # per Complex
        self._uses: dict[int, set[int]] = {}  # Complex -> the Complexes its fields reach
        self._objects: dict[int, Complex] = {}
        self._primitives: dict[str, Check] = {}
        self._expanded: dict[Node, Complex] = {}  # by snapshot Node (kept alive: ids would be reused)
        if _ELEMENT in definitions.structures:
            _ELEMENT_CHECK[:] = [_linked(self.structure(_ELEMENT))]

    # -- public -------------------------------------------------------------------------------------

    def profile(self, url: str) -> tuple[Complex, tuple[NotChecked, ...]]:
        """The root check of the StructureDefinition at `url` and what it cannot check."""
        root = self.structure(url)
        seen: set[int] = set()
        pending = [id(root)]
        notes: dict[tuple[str, str], NotChecked] = {}
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            for note in self._not_checked.get(current, ()):
                notes.setdefault((note.path, note.key), note)
            pending.extend(self._uses.get(current, ()))
        return root, tuple(notes[k] for k in sorted(notes))

    def structure(self, url: str) -> Complex:
        url = url.split("|", 1)[0]
        if url not in self._by_url:
            definition = self.definitions.structures[url]
            root, nodes = build(definition["snapshot"]["element"])
            complex_ = Complex()
            self._by_url[url] = complex_  # before filling: recursive structures (Extension, Identifier) end
            complex_.root = definition.get("kind") == "resource"
            self._fill(complex_, root, nodes, extra_invariants=())
        return self._by_url[url]

    # -- building -----------------------------------------------------------------------------------

    def _register(self, complex_: Complex) -> int:
        self._objects[id(complex_)] = complex_
        return id(complex_)

    def _note(self, owner: Complex, path: str, key: str, reason: str) -> None:
        self._not_checked.setdefault(self._register(owner), []).append(NotChecked(path, key, reason))

    def _use(self, owner: Complex, used: Complex) -> None:
        self._uses.setdefault(self._register(owner), set()).add(self._register(used))

    def _fill(
        self, complex_: Complex, node: Node, nodes: dict[str, Node], extra_invariants: tuple[dict[str, Any], ...]
    ) -> None:
        self._register(complex_)
        required, must_support, choices = [], [], []
        for child in node.children:
            names = self._add_child(complex_, child, nodes)
            element = child.element
            if len(names) > 1:
                choices.append((child.name, frozenset(names)))
            if element.get("min", 0) > 0:
                required.append((child.name, tuple(names), element["min"]))
            if element.get("mustSupport"):
                must_support.append((child.name, tuple(names)))
        complex_.set_elements(required, must_support)
        complex_.choices = tuple(choices)
        complex_.extension = node.element["path"] == "Extension" or any(
            type_code(t) == "Extension" for t in node.element.get("type", [])
        )
        complex_.invariants = self._invariants(complex_, node.element, extra_invariants)
        kinds = {node.element["path"], *(type_code(t) for t in node.element.get("type", []))}
        if "Coding" in kinds:
            complex_.rules = (_code_system_rule(code_systems()),)
        elif kinds & _QUANTITIES:
            complex_.rules = (_ucum_rule,)
        complex_.run = specialise(complex_)

    def _invariants(
        self, owner: Complex, element: dict[str, Any], extra: tuple[dict[str, Any], ...]
    ) -> tuple[tuple[str, str, invariants.Invariant], ...]:
        out, seen = [], set()
        for constraint in [*element.get("constraint", []), *extra]:
            key = constraint.get("key", "")
            if key in seen or key in invariants.BUILT_IN:
                continue
            seen.add(key)
            expression = constraint.get("expression")
            if not expression:
                self._note(owner, element["path"], key, "no FHIRPath expression")
                continue
            holds, reason = invariants.compile_invariant(key, expression)
            if holds is None:
                self._note(owner, element["path"], key, reason)
                continue
            severity = WARNING if constraint.get("severity") == "warning" else ERROR
            out.append((key, severity, holds))
        return tuple(out)

    def _add_child(self, owner: Complex, child: Node, nodes: dict[str, Node]) -> list[str]:
        element = child.element
        name = child.name
        types = [type_code(t) for t in element.get("type", [])]
        target = child
        reference = element.get("contentReference")
        if reference and not types:
            target = nodes.get(reference.split("#", 1)[-1], child)
            types = [type_code(t) for t in target.element.get("type", [])] or ["BackboneElement"]
        is_list, maximum = _is_list(element), _maximum(element)
        names = []
        if name.endswith("[x]"):
            base = name[:-3]
            by_type = {s.element.get("type", [{}])[0].get("code"): s for s in child.slices if s.element.get("type")}
            for code in types:
                json_name = base + _upper_first(code)
                # A type slice (value[x]:valueQuantity) or a one-type choice's children constrain that type.
                typed = by_type.get(code) or (child if len(types) == 1 else None)
                item = self._item(owner, typed or child, code, nodes, expand=typed is not None)
                field = owner.fields[json_name] = Field(json_name, is_list, maximum, item)
                field.finish(code if item is self._primitives.get(code) else None)
                names.append(json_name)
            return names
        code = types[0] if types else "BackboneElement"
        item = self._item(owner, target, code, nodes, expand=True, as_element=child)
        field = Field(name, is_list, maximum, item)
        if child.slices and element.get("slicing"):
            slicing, reason = compile_slicing(
                child, lambda s: self._item(owner, s, code, nodes, expand=True), element["path"]
            )
            if slicing is None:
                self._note(owner, element["path"], f"slice:{name}", reason)
            field.slicing = slicing
            if slicing is not None:
                slicing.default = item
        field.finish(code if item is self._primitives.get(code) else None)
        owner.fields[name] = field
        return [name]

    def _item(
        self,
        owner: Complex,
        node: Node,
        code: str,
        nodes: dict[str, Node],
        *,
        expand: bool,
        as_element: Node | None = None,
    ) -> Check:
        """The check of one value of type `code` that the element `node` describes (its children when the
        snapshot expands them, else the type's own definition), with its fixed, pattern and binding."""
        element = (as_element or node).element
        path = element["path"]
        if is_primitive(code):
            base = self._primitive(code)
            constraints = [c for c in node.element.get("constraint", []) if c.get("key") not in invariants.BUILT_IN]
            for constraint in constraints:
                self._note(owner, path, constraint.get("key", ""), "invariant on a primitive value")
        elif code in _RESOURCE_SLOTS or (code and code[0].isupper() and self._is_resource(code)):
            base = _resource_slot
            self._note(owner, path, "structure", "contained resources are not validated against a profile")
        else:
            complex_ = self._complex_for(owner, node, code, nodes, expand=expand)
            return self._with_value_rules(owner, node.element, code, path, _linked(complex_), complex_)
        return self._with_value_rules(owner, node.element, code, path, base)

    def _is_resource(self, code: str) -> bool:
        definition = self.definitions.datatype(code)
        return definition is None and code not in _ELEMENT_TYPES

    def _complex_for(self, owner: Complex, node: Node, code: str, nodes: dict[str, Node], *, expand: bool) -> Complex:
        datatype = self.definitions.datatype(code)
        type_root = datatype["snapshot"]["element"][0] if datatype else {}
        if expand and node.children:
            complex_ = self._expanded.get(node)
            if complex_ is None:
                # Kept before filling: a contentReference (QuestionnaireResponse.item.item) comes back here.
                complex_ = self._expanded[node] = Complex()
                self._fill(complex_, node, nodes, extra_invariants=tuple(type_root.get("constraint", [])))
            self._use(owner, complex_)
            return complex_
        profiles = [p for t in node.element.get("type", []) if t.get("code") == code for p in t.get("profile", [])]
        for url in profiles:
            if url.split("|", 1)[0] in self.definitions.structures:
                used = self.structure(url)
                self._use(owner, used)
                return self._with_node_invariants(owner, node, used, type_root)
        if code == "Extension":
            used = self._extension()
            self._use(owner, used)
            return used
        if datatype is None:
            # Element/BackboneElement without children in the snapshot: only id and extensions exist.
            used = self.structure("http://hl7.org/fhir/StructureDefinition/Element")
        else:
            used = self.structure(datatype["url"])
        self._use(owner, used)
        return self._with_node_invariants(owner, node, used, type_root)

    def _with_node_invariants(self, owner: Complex, node: Node, used: Complex, type_root: dict[str, Any]) -> Complex:
        # The element may add invariants to its type's (us-core-6 on Patient.name): a copy carries both.
        own = {c.get("key") for c in type_root.get("constraint", [])}
        extra = [c for c in node.element.get("constraint", []) if c.get("key") not in own | invariants.BUILT_IN]
        if not extra:
            return used
        complex_ = Complex()
        complex_.fields, complex_.required, complex_.must_support = used.fields, used.required, used.must_support
        complex_.required_keys, complex_.must_support_keys = used.required_keys, used.must_support_keys
        complex_.choices, complex_.extension, complex_.rules = used.choices, used.extension, used.rules
        complex_.invariants = used.invariants + self._invariants(complex_, {**node.element, "constraint": extra}, ())
        complex_.run = specialise(complex_)
        self._use(owner, complex_)
        self._use(complex_, used)
        return complex_

    def _extension(self) -> Complex:
        """Extension checked by the definition its url names, when carried; else as a base Extension."""
        if "#extension" in self._by_url:
            return self._by_url["#extension"]
        base = self.structure("http://hl7.org/fhir/StructureDefinition/Extension")
        known = {
            url
            for url, d in self.definitions.structures.items()
            if d.get("type") == "Extension" and d.get("derivation") == "constraint"
        }
        targets: dict[str, Check] = {}
        fallback = _linked(base)  # base may still be compiling (Extension.extension is an Extension)

        class _ByUrl(Complex):
            __slots__ = ()

            def check(
                self, obj: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]
            ) -> None:  # noqa: ANN401
                target = targets.get(obj.get("url"), fallback) if type(obj) is dict else fallback  # type: ignore[arg-type]
                target(obj, path, issues, ms, env)

        by_url = _ByUrl()
        by_url.fields, by_url.required, by_url.invariants = base.fields, base.required, base.invariants
        by_url.required_keys, by_url.choices, by_url.extension = base.required_keys, base.choices, True
        self._by_url["#extension"] = by_url
        for url in known:
            target = self.structure(url)
            targets[url] = _linked(target)
            self._use(by_url, target)
        self._use(by_url, base)
        return by_url

    # -- value rules --------------------------------------------------------------------------------

    def _target_types(self, element: dict[str, Any], code: str) -> frozenset[str]:
        """The resource types a Reference element may point to; empty when any (Resource) or unknown."""
        out = set()
        for kind in element.get("type", []):
            if kind.get("code") != code:
                continue
            for url in kind.get("targetProfile", []):
                definition = self.definitions.structures.get(url.split("|", 1)[0])
                name = definition["type"] if definition else url.split("|", 1)[0].rsplit("/", 1)[-1]
                if name == "Resource":
                    return frozenset()
                out.add(name)
        return frozenset(out)

    def _primitive(self, code: str) -> Check:
        if code not in self._primitives:
            self._primitives[code] = self._new_primitive(code)
        return self._primitives[code]

    def _new_primitive(self, code: str) -> Check:
        valid = CHECKS[code]
        key_for_text = "format" if code in _TEXT_TYPES else "type"
        detail = f"not a valid {code.rsplit('.', 1)[-1]}"

        def check(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
            if not valid(value):
                key = key_for_text if type(value) is str else "type"
                issues.append(Issue(path, key, ERROR, detail))

        return check

    def _with_value_rules(
        self,
        owner: Complex,
        element: dict[str, Any],
        code: str,
        path: str,
        base: Check,
        complex_: Complex | None = None,
    ) -> Check:
        rules: list[Check] = []
        value_rule = _fixed_or_pattern(element)
        if value_rule is not None:
            rules.append(_value_rule(*value_rule))
        binding = element.get("binding", {})
        strength = binding.get("strength")
        for extension in binding.get("extension", []):
            if extension.get("url") == _MAX_VALUE_SET:
                self._note(owner, path, "binding", f"maximum value set {extension.get('valueCanonical')}")
        if strength in ("required", "extensible") and binding.get("valueSet") and code in _BOUND_TYPES:
            table = code_table(binding["valueSet"])
            if not table.complete:
                what = "is not carried" if table.missing else "cannot be fully expanded (filters or external systems)"
                self._note(owner, path, "binding", f"{strength} value set {table.url} {what}")
            if table.codes or table.bare_codes:
                rules.append(_binding_rule(table, code, ERROR if strength == "required" else WARNING))
            elif code == "CodeableConcept" and strength == "required" and not table.missing:
                rules.append(_binding_rule(table, code, ERROR))
        if code == "Reference":
            targets = self._target_types(element, code)
            if targets:
                rules.append(_reference_rule(targets))
        if not rules:
            return base
        if complex_ is not None and complex_.run is not None:
            # The element's rules written into a copy of its type's generated check: one call per value.
            specialised = specialise(complex_, tuple(rules))
            if specialised is not None:
                return specialised
        if len(rules) == 1:
            (rule,) = rules

            def one(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
                base(value, path, issues, ms, env)
                rule(value, path, issues, ms, env)

            if value_rule is not None and value_rule[0] == "fixed" and is_primitive(code):
                one.fixed_value = value_rule[1]  # type: ignore[attr-defined]  (Field.finish's fast path)
            return one

        def several(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
            base(value, path, issues, ms, env)
            for rule in rules:
                rule(value, path, issues, ms, env)

        return several


_ELEMENT = "http://hl7.org/fhir/StructureDefinition/Element"
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


def _linked(complex_: Complex) -> Check:
    """The generated check of a Complex; for one still being compiled (a recursive structure), a
    function that takes the generated check once there is one."""
    if complex_.run is not None:
        return complex_.run

    def later(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
        (complex_.run or complex_.check)(value, path, issues, ms, env)

    return later


def _resource_slot(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
    if type(value) is not dict or type(value.get("resourceType")) is not str:
        issues.append(Issue(path, "type", ERROR, "expected a resource"))


def _value_rule(kind: str, expected: Any) -> Check:  # noqa: ANN401
    if kind == "fixed":

        def fixed(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
            if value != expected:
                issues.append(Issue(path, "fixed", ERROR, "differs from the profile's fixed value"))

        return fixed

    def pattern(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        if not matches_pattern(value, expected):
            issues.append(Issue(path, "pattern", ERROR, "does not match the profile's pattern"))

    return pattern


def _code_system_rule(systems: dict[str, frozenset[str]]) -> Check:
    def known_code(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        if type(value) is dict:
            codes = systems.get(value.get("system"))  # type: ignore[arg-type]
            if codes is not None and value.get("code") not in codes and type(value.get("code")) is str:
                issues.append(Issue(path, "code-system", ERROR, "code not defined by its code system"))

    return known_code


# A literal reference names its type first: `Patient/1`, `Patient?identifier=...`, or after a base URL.
_REFERENCE_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)(?:/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?|\?.*)$")


def _reference_rule(targets: frozenset[str]) -> Check:
    detail = "refers to a resource type the profile does not allow here"

    def reference(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        text = value.get("reference") if type(value) is dict else None
        if type(text) is str and not text.startswith(("#", "urn:")):
            match = _REFERENCE_TYPE.search(text)
            if match is not None and match.group(1) not in targets:
                issues.append(Issue(path, "reference", ERROR, detail))

    return reference


def _ucum_rule(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
    if type(value) is dict and value.get("system") == UCUM:
        code = value.get("code")
        if type(code) is str and not is_ucum(code):
            issues.append(Issue(f"{path}.code", "code-system", ERROR, "not a valid UCUM unit code"))


def _binding_rule(table: Any, code: str, severity: str) -> Check:  # noqa: ANN401
    detail = f"not in value set {table.url}"

    def coded(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        if type(value) is str and table.has(None, value) is False:
            issues.append(Issue(path, "binding", severity, detail))

    def coding(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        # A coding without a system names no code of any value set ("" is a system no table has).
        if type(value) is dict and "code" in value and table.has(value.get("system") or "", value["code"]) is False:
            issues.append(Issue(path, "binding", severity, detail))

    def concept(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401, ARG001
        if type(value) is not dict:
            return
        codings = value.get("coding")
        if type(codings) is not list or not codings:
            if severity == ERROR:
                issues.append(Issue(path, "binding", severity, f"no coding from required value set {table.url}"))
            return
        undecided = False
        for coding in codings:
            if type(coding) is dict and "code" in coding:
                verdict = table.has(coding.get("system") or "", coding["code"])
                if verdict:
                    return
                undecided = undecided or verdict is None
        if not undecided:
            issues.append(Issue(path, "binding", severity, detail))

    if code == "CodeableConcept":
        return concept
    if code in ("Coding", "Quantity"):
        return coding
    return coded
