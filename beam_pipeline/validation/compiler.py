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

from collections.abc import Callable
from typing import Any

from beam_pipeline.validation import invariants
from beam_pipeline.validation.checks import (
    TEXT_TYPES,
    Complex,
    Field,
    RememberedField,
    linked,
    resolved,
    set_element_check,
)
from beam_pipeline.validation.issues import ERROR, WARNING, Check, Issue, NotChecked
from beam_pipeline.validation.package import Definitions
from beam_pipeline.validation.primitives import CHECKS, is_primitive
from beam_pipeline.validation.remembered import reads_only_the_value, reads_variables, remembered
from beam_pipeline.validation.slicing import compile_slicing
from beam_pipeline.validation.specialise import specialise
from beam_pipeline.validation.terminology import code_systems, code_table
from beam_pipeline.validation.tree import Node, build
from beam_pipeline.validation.value_rules import (
    binding_rule,
    code_system_rule,
    coded_concept_rule,
    fixed_or_pattern,
    reference_rule,
    resource_slot,
    ucum_rule,
    value_rule,
)

_BOUND_TYPES = frozenset({"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"})
_RESOURCE_SLOTS = frozenset({"Resource", "DomainResource"})
_ELEMENT_TYPES = frozenset({"Element", "BackboneElement"})
_FHIRPATH_TYPES = "http://hl7.org/fhirpath/System."
_FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_QUANTITIES = frozenset({"Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity"})
_NO_CODES = object()
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


_ELEMENT = "http://hl7.org/fhir/StructureDefinition/Element"


def _maximum(element: dict[str, Any]) -> int | None:
    text = element.get("max", "*")
    return None if text == "*" else int(text)


def _is_list(element: dict[str, Any]) -> bool:
    # The JSON shape follows the base definition's cardinality, whatever the profile narrows it to.
    return element.get("base", {}).get("max", element.get("max", "1")) != "1"


def _primitive_invariant(base: Check, key: str, severity: str, holds: Callable[[Any], bool]) -> Check:
    def check(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
        base(value, path, issues, ms, env)
        if not holds(value):
            issues.append(Issue(path, key, severity, "invariant not satisfied"))

    return check


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
        self._extensions_value_only: bool | None = None  # every Extension definition carried (remembered.py)
        self._value_only: dict[str, bool] = {}  # remembered.reads_only_the_value, by definition URL
        if _ELEMENT in definitions.structures:
            set_element_check(linked(self.structure(_ELEMENT)))

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
        for current in seen:
            self._objects[current].relink()
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
            if definition.get("type") == "Extension" and self._reads_only_the_value(url):
                complex_.run = remembered(complex_.fastest)
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
            complex_.rules = (code_system_rule(code_systems()),)
            complex_.terminology = True
        elif "CodeableConcept" in kinds:
            complex_.rules = (coded_concept_rule(code_systems()),)
        elif kinds & _QUANTITIES:
            complex_.rules = (ucum_rule,)
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
        remember = code == "Extension" and is_list and self._reads_only_the_values(child)
        field = (RememberedField if remember else Field)(name, is_list, maximum, item)
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
                key = constraint.get("key", "")
                holds = invariants.PRIMITIVE_NATIVE.get((key, code))
                if holds is None:
                    self._note(owner, path, key, "invariant on a primitive value")
                else:
                    base = _primitive_invariant(
                        base, key, WARNING if constraint.get("severity") == "warning" else ERROR, holds
                    )
        elif code in _RESOURCE_SLOTS or (code and code[0].isupper() and self._is_resource(code)):
            base = resource_slot
            self._note(owner, path, "structure", "contained resources are not validated against a profile")
        else:
            complex_ = self._complex_for(owner, node, code, nodes, expand=expand)
            return self._with_value_rules(owner, node.element, code, path, linked(complex_), complex_)
        return self._with_value_rules(owner, node.element, code, path, base)

    def _reads_only_the_value(self, url: str) -> bool:
        """remembered.reads_only_the_value, worked out once per definition (every element of extensions asks
        about the same few: Extension, its datatypes, the package's extensions)."""
        found = self._value_only.get(url)
        if found is None:
            found = self._value_only[url] = reads_only_the_value(self.definitions, url)
        return found

    def _reads_only_the_values(self, node: Node) -> bool:
        """Whether checking the values of an element of extensions reads nothing but them (remembered.py):
        no constraint of the element, its slices or their children reads a %variable, and every extension
        definition an item may be checked by (the slices', or any the package carries) reads the value alone."""
        if self._extensions_value_only is None:
            known = [u for u, d in self.definitions.structures.items() if d.get("type") == "Extension"]
            self._extensions_value_only = all(self._reads_only_the_value(u) for u in known)
        pending = [node]
        while pending:
            current = pending.pop()
            if reads_variables(current.element.get("constraint", [])):
                return False
            for kind in current.element.get("type", []):
                datatype = self.definitions.datatype(kind.get("code", ""))
                urls = [p.split("|", 1)[0] for p in kind.get("profile", [])] + ([datatype["url"]] if datatype else [])
                if not all(self._reads_only_the_value(url) for url in urls):
                    return False
            pending += current.children + current.slices
        return self._extensions_value_only

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
        fallback = linked(base)  # base may still be compiling (Extension.extension is an Extension)

        class _ByUrl(Complex):
            __slots__ = ()

            def check(
                self, obj: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]
            ) -> None:  # noqa: ANN401
                url = obj.get("url") if type(obj) is dict else None
                target = targets.get(url, fallback) if type(url) is str else fallback
                target(obj, path, issues, ms, env)

            def relink(self) -> None:
                nonlocal fallback
                fallback = resolved(fallback)
                for url, target in targets.items():
                    targets[url] = resolved(target)

        by_url = _ByUrl()
        by_url.fields, by_url.required, by_url.invariants = base.fields, base.required, base.invariants
        by_url.required_keys, by_url.choices, by_url.extension = base.required_keys, base.choices, True
        self._by_url["#extension"] = by_url
        for url in known:
            target = self.structure(url)
            targets[url] = linked(target)
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
        key_for_text = "format" if code in TEXT_TYPES else "type"
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
        fixed = fixed_or_pattern(element)
        if fixed is not None:
            rules.append(value_rule(*fixed))
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
                rules.append(binding_rule(table, code, ERROR if strength == "required" else WARNING))
            elif code == "CodeableConcept" and strength == "required" and not table.missing:
                rules.append(binding_rule(table, code, ERROR))
        if code == "Reference":
            targets = self._target_types(element, code)
            if targets:
                rules.append(reference_rule(targets))
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

            if fixed is not None and fixed[0] == "fixed" and is_primitive(code):
                one.fixed_value = fixed[1]  # type: ignore[attr-defined]  (Field.finish's fast path)
            codes = getattr(rule, "bare_codes", _NO_CODES)
            if codes is not _NO_CODES and complex_ is None and code in CHECKS and code in TEXT_TYPES:
                # A bound text primitive (Field.finish's fast path): valid and in the table, or valid and of
                # a table that cannot say no, gets no issue from `one`.
                valid = CHECKS[code]
                one.passes = valid if codes is None else lambda value: valid(value) and value in codes  # type: ignore[attr-defined]
            return one

        def several(value: Any, path: str, issues: list[Issue], ms: list[Issue], env: dict[str, list[Any]]) -> None:  # noqa: ANN401
            base(value, path, issues, ms, env)
            for rule in rules:
                rule(value, path, issues, ms, env)

        return several
