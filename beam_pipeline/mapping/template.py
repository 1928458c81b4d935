"""A resource skeleton (the `resource:` of a mapping file) -> the Python source of one function that builds it.

The skeleton reads like the resource it produces. A string `"{{ expression }}"` is replaced by what the
FHIRPath expression gives; text around `{{ }}` makes a string of the parts. Other values are written as
they are. Absent stays absent: an element whose expression gives nothing is left out, a list item that
gives nothing is dropped, and an object none of whose expressions gave anything is left out (an object
with no expression at all, like a fixed coding, is always written). Two keys steer an object: `_if: expr`
writes it only when the expression is true; `_for: expr`, on an object inside a list, writes it once per
item of the collection, with names inside read from that item (`%record` is still the whole record).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from beam_pipeline.mapping.fhirpath import Compiled, FhirPathError, Single, compile_expression, single_field

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
DIRECTIVES = ("_if", "_for")


class TemplateError(ValueError):
    """A skeleton that does not compile; `path` locates it (keys and list indexes from the skeleton root)."""

    def __init__(self, message: str, path: tuple[Any, ...], column: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.column = column


@dataclass
class Uses:
    """What the compiled expressions need: variables, ConceptMaps, ValueSets, referenced resource types."""

    variables: set[str] = field(default_factory=set)
    translations: set[str] = field(default_factory=set)
    value_sets: set[str] = field(default_factory=set)
    references: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    # What may be named (None: anything): checked per expression, so an error names the line using it.
    known_variables: frozenset[str] | None = None
    known_maps: frozenset[str] | None = None
    known_sets: frozenset[str] | None = None

    def unknown(self, compiled: Compiled) -> str | None:
        """What the expression names that is not there, as the message to give, or None."""
        if self.known_variables is not None and compiled.variables - self.known_variables:
            name = sorted(compiled.variables - self.known_variables)[0]
            return f"%{name} is not defined; define it under let, or use a built-in"
        if self.known_maps is not None and compiled.translations - self.known_maps:
            name = sorted(compiled.translations - self.known_maps)[0]
            return f"ConceptMap '{name}' is not among the terminology files; add it or fix the id"
        if self.known_sets is not None and compiled.value_sets - self.known_sets:
            name = sorted(compiled.value_sets - self.known_sets)[0]
            return f"ValueSet '{name}' is not among the terminology files; add it or fix the id"
        return None

    def knowing(self, variables: frozenset[str] | None = None) -> Uses:
        """A fresh Uses that checks against the same terminology (and these variables, when given)."""
        return Uses(
            known_variables=variables if variables is not None else self.known_variables,
            known_maps=self.known_maps,
            known_sets=self.known_sets,
        )

    def add(self, other: Compiled | Uses) -> None:
        """Add what one compiled expression, or another Uses, needs."""
        self.variables |= other.variables
        self.translations |= other.translations
        self.value_sets |= other.value_sets
        self.references |= other.references
        self.fields |= other.fields
        self.paths |= other.paths


def is_expression(value: Any) -> bool:  # noqa: ANN401
    return isinstance(value, str) and "{{" in value


def expression_text(value: str) -> str | None:
    """The expression of a string that is one `{{ }}` and nothing else."""
    match = _EXPRESSION.fullmatch(value.strip())
    return match.group(1).strip() if match and "{{" not in match.group(1) else None


def compile_in(text: str, path: tuple[Any, ...], uses: Uses, focus: str = "r", *, condition: bool = False) -> str:
    if not text:
        raise TemplateError("an empty {{ }}: write an expression inside, or remove the element", path)
    try:
        compiled = compile_expression(text, focus, condition=condition, fast=True)
    except FhirPathError as exc:
        raise TemplateError(f"expression {text!r}: {exc} (column {exc.column})", path, exc.column) from exc
    problem = uses.unknown(compiled)
    if problem is not None:
        raise TemplateError(problem, path)
    uses.add(compiled)
    return compiled.source


class _Emitter:
    def __init__(self, uses: Uses, *, fast: bool = True) -> None:
        self.fast = fast  # the text fast paths (_single); without them, the general code only
        self.lines: list[str] = []
        self.indent = 1
        self.counter = 0
        self.uses = uses
        self.paths: list[tuple[Any, ...]] = []  # element paths, for the "several values" message

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def var(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def path_id(self, path: tuple[Any, ...]) -> int:
        self.paths.append(path)
        return len(self.paths) - 1


def _dynamic(node: Any) -> bool:  # noqa: ANN401
    if isinstance(node, dict):
        return any(k in DIRECTIVES or _dynamic(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_dynamic(v) for v in node)
    return is_expression(node)


def _value_source(out: _Emitter, text: str, path: tuple[Any, ...], focus: str) -> str:
    """Python source of the collection a string with `{{ }}` gives."""
    whole = expression_text(text)
    if whole is not None:
        return compile_in(whole, path, out.uses, focus)
    parts: list[str] = []
    pos = 0
    for match in _EXPRESSION.finditer(text):
        if match.start() > pos:
            parts.append(repr(text[pos : match.start()]))
        parts.append(compile_in(match.group(1).strip(), path, out.uses, focus))
        pos = match.end()
    if pos < len(text):
        parts.append(repr(text[pos:]))
    return f"rt_interpolate({', '.join(parts)})"


def _gen(out: _Emitter, node: Any, path: tuple[Any, ...], focus: str, target: str, write: str) -> None:  # noqa: ANN401
    """Emit code that writes `node`'s value with `write` (a format string over the value's source), and
    sets `target` True when a value came from an expression."""
    if not _dynamic(node):
        # A fixed part is one Python literal: built fresh for each resource (resources are changed later).
        out.emit(write.format(repr(node)))
    elif isinstance(node, dict):
        _gen_object(out, node, path, focus, target, write)
    elif isinstance(node, list):
        items = out.var("l")
        out.emit(f"{items} = []")
        for i, item in enumerate(node):
            _gen_item(out, item, (*path, i), focus, items, target)
        out.emit(f"if {items}:")
        out.emit("    " + write.format(items))
    elif is_expression(node):
        values = out.var("v")
        general = _value_source(out, node, path, focus)
        fast = _single(node, focus) if out.fast else None
        if fast is not None:
            # An item's text field: written from the text itself; anything else goes the general way below.
            out.emit(f"x = {fast.raw}")
            out.emit("if type(x) is str:")
            out.emit(f"    if x := {fast.text.format('x.strip()')}:")
            out.emit(f"        {target} = True")
            out.emit("        " + write.format(_one_text(out, path)))
            out.emit("elif x is not None:")
            out.indent += 1
        out.emit(f"{values} = {general}")
        # An empty text (from '' or a computed one) is absent, as an empty value in a record is.
        out.emit(f"if {values}:")
        out.indent += 1
        # The usual value inline (one text that is no placeholder); rt_one for the rest: it refuses
        # placeholders, copies objects, converts date-times and refuses several values. An empty text (from
        # '' or a computed one) is absent, as an empty value in a record is.
        out.emit(
            f"if len({values}) == 1 and type(x := {values}[0]) is str and "
            "(len(x) > 4 or (x and x.upper() not in PLACEHOLDERS)):"
        )
        out.emit(f"    {target} = True")
        out.emit("    " + write.format("x"))
        # One flat object (a Coding from a ConceptMap, a reference): rt_one's copy, without the calls.
        out.emit(f"elif len({values}) == 1 and {_FLAT_OBJECT}:")
        out.emit(f"    {target} = True")
        out.emit("    " + write.format("x.copy()"))
        out.emit(f"elif {values} != NO_TEXT:")
        out.emit(f"    {target} = True")
        out.emit("    " + write.format(f"rt_one({values}, {out.path_id(path)})"))
        out.indent -= 1
        if fast is not None:
            out.indent -= 1
    else:
        out.emit(write.format(repr(node)))


def _gen_item(out: _Emitter, item: Any, path: tuple[Any, ...], focus: str, items: str, target: str) -> None:  # noqa: ANN401
    if isinstance(item, dict) and "_for" in item:
        source = item["_for"]
        if not isinstance(source, str):
            raise TemplateError("_for takes an expression (a collection to repeat this object for)", path)
        loop = out.var("e")
        out.emit(f"for {loop} in {compile_in(_strip_braces(source), (*path, '_for'), out.uses, focus)}:")
        out.indent += 1
        body = {k: v for k, v in item.items() if k != "_for"}
        _gen_object(out, body, path, loop, target, f"{items}.append({{}})")
        out.indent -= 1
    elif isinstance(item, list):
        raise TemplateError("a list inside a list is not FHIR: make the inner list an element of an object", path)
    elif is_expression(item):
        values = out.var("v")
        general = _value_source(out, item, path, focus)
        fast = _single(item, focus) if out.fast else None
        pad = ""
        if fast is not None:
            # As in _gen: an item's text field written from the text itself, anything else the general way.
            out.emit(f"x = {fast.raw}")
            out.emit("if type(x) is str:")
            out.emit(f"    if x := {fast.text.format('x.strip()')}:")
            out.emit(f"        {target} = True")
            out.emit(f"        {items}.append({_one_text(out, path)})")
            if fast.text == "{}":
                # A list of texts (given names, address lines): each stripped, the empty ones left out.
                one = _one_text(out, path, "t")
                out.emit("elif type(x) is list and TEXTS.issuperset(map(type, x)):")
                out.emit(f"    if x := [{one} for y in x if (t := y.strip())]:")
                out.emit(f"        {target} = True")
                out.emit(f"        {items}.extend(x)")
            out.emit("elif x is not None:")
            pad = "    "
        out.emit(f"{pad}{values} = {general}")
        # One text longer than any placeholder is what rt_out would give; rt_out for the rest.
        out.emit(f"{pad}if len({values}) == 1 and type(x := {values}[0]) is str and len(x) > 4:")
        out.emit(f"{pad}    {target} = True")
        out.emit(f"{pad}    {items}.append(x)")
        out.emit(f"{pad}elif len({values}) == 1 and {_FLAT_OBJECT}:")
        out.emit(f"{pad}    {target} = True")
        out.emit(f"{pad}    {items}.append(x.copy())")
        out.emit(f"{pad}elif {values}:")
        out.emit(f"{pad}    {target} = True")
        out.emit(f"{pad}    {items}.extend(rt_out({values}, {out.path_id(path)}))")
    elif isinstance(item, dict) and _dynamic(item):
        _gen_object(out, item, path, focus, target, f"{items}.append({{}})")
    else:
        out.emit(f"{items}.append({item!r})")


# `x` (a value's one item) is an object of text, numbers, booleans and nulls only: rt_one copies it as it is.
_FLAT_OBJECT = "type(x) is dict and FLAT.issuperset(map(type, x.values()))"


def _one_text(out: _Emitter, path: tuple[Any, ...], x: str = "x") -> str:
    """Source of what a non-empty text `x` writes: itself, unless it is a placeholder (rt_one refuses it)."""
    return f"{x} if len({x}) > 4 or {x}.upper() not in PLACEHOLDERS else rt_one([{x}], {out.path_id(path)})"


def _single(value: str, focus: str) -> Single | None:
    whole = expression_text(value)
    return single_field(whole, focus) if whole is not None else None


def _strip_braces(text: str) -> str:
    inner = expression_text(text)
    return inner if inner is not None else text


def _gen_object(
    out: _Emitter, node: dict[str, Any], path: tuple[Any, ...], focus: str, target: str, write: str
) -> None:
    for key in node:
        if not isinstance(key, str):
            raise TemplateError(f"element names are text; {key!r} is not", path)
        if key.startswith("_") and key not in DIRECTIVES:
            raise TemplateError(
                f"'{key}': keys starting with '_' are directives ({', '.join(DIRECTIVES)}); FHIR's primitive "
                "extensions are not supported in mappings",
                (*path, key),
            )
        if key == "_for":
            raise TemplateError("_for repeats an object inside a list; put this object in a list", (*path, key))
    condition = node.get("_if")
    body = {k: v for k, v in node.items() if k != "_if"}
    if condition is not None:
        if not isinstance(condition, str):
            raise TemplateError("_if takes an expression (true writes the object)", (*path, "_if"))
        out.emit(f"if {compile_in(_strip_braces(condition), (*path, '_if'), out.uses, focus, condition=True)}:")
        out.indent += 1
    obj, present = out.var("d"), out.var("p")
    dynamic = _dynamic(body)
    # Fixed elements before the first computed one go into the object's literal: the same keys in the same
    # order, one step (a fixed part is built fresh for each resource: resources are changed later).
    keys = list(body)
    lead = next((i for i, key in enumerate(keys) if _dynamic(body[key])), len(keys))
    out.emit(f"{obj} = {{{', '.join(f'{key!r}: {body[key]!r}' for key in keys[:lead])}}}")
    if dynamic:
        out.emit(f"{present} = False")
    for key in keys[lead:]:
        _gen(out, body[key], (*path, key), focus, present, f"{obj}[{key!r}] = {{}}")
    if dynamic:
        out.emit(f"if {present}:")
        out.emit(f"    {target} = True")
        out.emit("    " + write.format(obj))
    else:
        if condition is not None:
            out.emit(f"{target} = True")  # a fixed object the condition chose is a value
        out.emit(write.format(obj))
    if condition is not None:
        out.indent -= 1


@dataclass(frozen=True)
class CompiledTemplate:
    source: str  # `def build(r, env):` returning the resource, for the record `r`
    paths: tuple[tuple[Any, ...], ...]


def compile_template(
    skeleton: dict[str, Any], uses: Uses, name: str = "build", *, fast: bool = True
) -> CompiledTemplate:
    """`fast`: with the text fast paths (the tests hold them to the general code, which `fast=False` gives)."""
    out = _Emitter(uses, fast=fast)
    out.emit("F = env['$fields']")
    out.emit("p0 = False")
    _gen_object(out, skeleton, (), "r", "p0", "return {}")
    out.emit("return None")
    source = f"def {name}(r, env):\n" + "\n".join(out.lines) + "\n"
    return CompiledTemplate(source, tuple(out.paths))


def element_paths(skeleton: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:  # noqa: ANN401
    """(FHIR element path, skeleton path) of every element the skeleton writes, directives left out."""
    found: list[tuple[tuple[str, ...], tuple[Any, ...]]] = []

    def walk(node: Any, element: tuple[str, ...], where: tuple[Any, ...]) -> None:  # noqa: ANN401
        if isinstance(node, dict):
            for key, value in node.items():
                if key in DIRECTIVES:
                    continue
                found.append(((*element, key), (*where, key)))
                walk(value, (*element, key), (*where, key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, element, (*where, i))

    walk(skeleton, path, ())
    return found


Builder = Callable[[dict[str, Any], dict[str, Any]], "dict[str, Any] | None"]
