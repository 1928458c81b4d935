"""One mapping file (a message type of a feed) -> a CompiledMapping: checked, then compiled to Python once.

The file's parts, in the order a message meets them (docs/mapping.md has the reference):
  id, title            what the mapping is called (the id goes into meta.tag with the content version)
  recognise            types: the message type values it maps (MESSAGE_TYPE, messageType or resourceType,
                       compared in lower case, or a topic's --topic_types type); default: true for
                       messages that name no type
  business_filters     whether --filter_country / --filter_program_names apply
  let                  named expressions, computed once per message, read as %name
  filter               rows skipped as `filtered` with a reason: [{when, reason}]
  validate             checks in order, the first failing one is the message's error:
                       {fields: [...]} text or a number, no control characters;
                       {required: [...], code?} present and not empty;
                       {dates: [...]} real dates or date-times;
                       {when: expr, code, detail} an error when the expression is true
  resources            what it writes: [{profiles: [...], resource: {skeleton}, when?, business_identifier?}]
  samples              raw messages it must map: the launch's prerequisites map them before a job starts
  skip                 instead of let/filter/validate/resources/samples: a reason; every message of its
                       types is skipped as `filtered` with it (a source's table the feed does not write)
Every error names the file, the line and the fix; details name fields and rules, never values.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from beam_pipeline.contracts import outcome as o
from beam_pipeline.mapping import runtime
from beam_pipeline.mapping.fhirpath import FhirPathError, compile_expression
from beam_pipeline.mapping.template import TemplateError, Uses, compile_template, element_paths, expression_text
from beam_pipeline.mapping.terminology import Terminology
from beam_pipeline.mapping.yaml_source import Path, YamlError, line_of
from beam_pipeline.mapping.yaml_source import load as load_yaml

TOP_KEYS = (
    "id", "title", "description", "recognise", "business_filters", "let", "filter", "validate", "resources", "samples",
    "skip",
)  # fmt: skip
# What a `skip:` mapping has besides its reason: it reads nothing and writes nothing.
SKIP_KEYS = ("id", "title", "description", "recognise", "business_filters", "skip")
# Variables every mapping can read besides its own `let:` names.
BUILT_IN_VARIABLES = {
    "sourceIdSystem": "--source_id_system: the identifier system of source record ids",
    "naturalKeySystem": "the identifier system of rows without an id (hashKey values)",
    "record": "the whole raw record (inside _for, names read the item)",
    "today": "today's date, YYYY-MM-DD (UTC)",
}
MAPPING_TAG_SYSTEM = "urn:kafka-to-fhir:mapping"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
VALIDATE_CODES = frozenset(o.MAPPING_CHECK_CODES)


class MappingError(ValueError):
    """A mapping file that does not load: `file:line: what is wrong; the fix`."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line


@dataclass(frozen=True)
class SourceFile:
    """A mapping or terminology file's name (relative path, or gs:// URL) and text: what a job carries."""

    name: str
    text: str


Function = Callable[..., Any]


@dataclass(frozen=True)
class Step:
    kind: str  # fields | required | dates | when
    names: tuple[str, ...] = ()
    checks: tuple[Function, ...] = ()
    code: str = ""
    detail: str = ""


@dataclass(frozen=True)
class CompiledResource:
    resource_type: str
    profiles: frozenset[str]
    build: Function  # (record, env) -> resource dict or None
    when: Function | None
    business_identifier: Function | None  # (resource, env) -> collection of Identifier; None: the first one
    paths: tuple[Path, ...]
    references: frozenset[str]  # resource types it refers to by reference(): written after them


@dataclass(frozen=True)
class CompiledMapping:
    id: str
    version: str
    file: str
    message_type: str  # the first recognised type: counters and Parsed.message_type name it
    types: tuple[str, ...]
    default: bool
    business_filters: bool
    lets: tuple[tuple[str, Function], ...]
    filters: tuple[tuple[Function, str], ...]
    steps: tuple[Step, ...]
    resources: tuple[CompiledResource, ...]
    references: frozenset[str]  # resource types this mapping's resources refer to
    fields: tuple[str, ...]  # the record fields its expressions read at the top level
    samples: tuple[tuple[int, dict[str, Any]], ...] = ()  # (line, raw message) it must map
    lines: dict[str, int] = field(default_factory=dict, compare=False)  # where id, types and default are
    # The lets, and the filters with the checks, each fused into one generated function.
    compute_lets: Function | None = field(default=None, compare=False, repr=False)
    checks: Function | None = field(default=None, compare=False, repr=False)

    @property
    def tag(self) -> dict[str, str]:
        """meta.tag's coding: a new dict each time (it goes into a resource)."""
        return {"system": MAPPING_TAG_SYSTEM, "code": self.tag_code}

    @functools.cached_property
    def tag_code(self) -> str:  # read for every resource written
        return f"{self.id}@{self.version}"


class _Context:
    """Where a check is: the file and the line table, for messages."""

    def __init__(self, file: str, lines: dict[Path, int]) -> None:
        self.file = file
        self.lines = lines

    def error(self, path: Path, message: str) -> MappingError:
        return MappingError(self.file, line_of(self.lines, path), message)


def _function(source: str, name: str, terminology: Terminology, **constants: Any) -> Function:  # noqa: ANN401
    """The function `name` defined by generated `source`, seeing the runtime, the terminology and `constants`."""
    namespace: dict[str, Any] = {**runtime.NAMESPACE, "tx": terminology, **constants}
    exec(compile(source, f"<mapping {name}>", "exec"), namespace)  # noqa: S102  (source we generated)
    return namespace[name]


def _expression(  # noqa: PLR0913
    ctx: _Context,
    path: Path,
    text: Any,  # noqa: ANN401
    uses: Uses,
    terminology: Terminology,
    focus: str = "r",
    *,
    condition: bool = False,
) -> Function:
    """A compiled function (record, env) -> a collection, or with `condition` -> a bool."""
    if not isinstance(text, str) or not text.strip():
        raise ctx.error(path, "an expression (FHIRPath text) is required here")
    inner = expression_text(text) if "{{" in text else text
    if inner is None:
        raise ctx.error(path, "write the expression without {{ }} here, or as one {{ expression }}")
    try:
        compiled = compile_expression(inner, focus, condition=condition, fast=True)
    except FhirPathError as exc:
        raise ctx.error(path, f"expression {inner!r}: {exc} (column {exc.column})") from None
    problem = uses.unknown(compiled)
    if problem is not None:
        raise ctx.error(path, problem)
    uses.add(compiled)
    function = _function(
        f"def f({focus}, env):\n    F = env['$fields']\n    return {compiled.source}\n", "f", terminology
    )
    function.source = compiled.source  # for the fused functions below
    return function


def _names(
    ctx: _Context, path: Path, value: Any, what: str, example: str = "field names, e.g. [Id, BIRTHDATE]"
) -> tuple[str, ...]:  # noqa: ANN401, E501
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ctx.error(path, f"{what} takes a list of {example}")
    return tuple(v.strip() for v in value)


def _code(ctx: _Context, path: Path, value: Any, default: str | None = None) -> str:  # noqa: ANN401
    if value is None and default is not None:
        return default
    if value not in VALIDATE_CODES:
        raise ctx.error(path, f"code must be one of {', '.join(sorted(VALIDATE_CODES))} (docs/mapping.md, error codes)")
    return value


def _detail(ctx: _Context, path: Path, value: Any) -> str:  # noqa: ANN401
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(path, "detail is required: name the field and the rule, never a value")
    if "{{" in value or "%" in value:
        raise ctx.error(path, "detail is fixed text: it may not quote the record (no {{ }} or %variables)")
    return value.strip()


def _steps(ctx: _Context, spec: Any, uses: Uses, terminology: Terminology) -> tuple[Step, ...]:  # noqa: ANN401
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise ctx.error(("validate",), "validate is a list of checks: fields, required, dates or when")
    steps = []
    for i, item in enumerate(spec):
        path = ("validate", i)
        kinds = [k for k in ("fields", "required", "dates", "when") if isinstance(item, dict) and k in item]
        if len(kinds) != 1:
            raise ctx.error(path, "each check has exactly one of fields, required, dates or when")
        kind = kinds[0]
        allowed = {"fields": {"fields"}, "required": {"required", "code"}, "dates": {"dates"},
                   "when": {"when", "code", "detail"}}[kind]  # fmt: skip
        extra = set(item) - allowed
        if extra:
            raise ctx.error((*path, sorted(extra)[0]), f"a {kind} check takes {', '.join(sorted(allowed))} only")
        if kind == "when":
            check = _expression(ctx, (*path, "when"), item["when"], uses, terminology, condition=True)
            code = _code(ctx, (*path, "code"), item.get("code"))
            steps.append(
                Step("when", checks=(check,), code=code, detail=_detail(ctx, (*path, "detail"), item.get("detail")))
            )
            continue
        names = _names(ctx, (*path, kind), item[kind], kind)
        if kind == "fields":
            steps.append(Step("fields", names=names))
            continue
        checks = tuple(_expression(ctx, (*path, kind), name, uses, terminology) for name in names)
        code = _code(ctx, (*path, "code"), item.get("code"), o.MISSING_REQUIRED_FIELD) if kind == "required" else ""
        steps.append(Step(kind, names=names, checks=checks, code=code))
    return tuple(steps)


def _resources(
    ctx: _Context, spec: Any, uses: Uses, terminology: Terminology, check_elements: bool
) -> tuple[CompiledResource, ...]:  # noqa: ANN401, E501
    if not isinstance(spec, list) or not spec:
        raise ctx.error(("resources",), "resources is a list of at least one {profiles, resource}")
    out = []
    for i, item in enumerate(spec):
        path: Path = ("resources", i)
        if not isinstance(item, dict) or "resource" not in item:
            raise ctx.error(path, "each entry of resources needs 'resource', the skeleton of what it writes")
        extra = set(item) - {"profiles", "resource", "when", "business_identifier"}
        if extra:
            raise ctx.error(
                (*path, sorted(extra)[0]), "a resources entry takes profiles, resource, when, business_identifier"
            )
        skeleton = item["resource"]
        rtype = skeleton.get("resourceType") if isinstance(skeleton, dict) else None
        if not isinstance(rtype, str) or "{{" in rtype:
            where = (
                (*path, "resource", "resourceType")
                if isinstance(skeleton, dict) and "resourceType" in skeleton
                else (
                    *path,
                    "resource",
                )
            )
            raise ctx.error(where, "the skeleton needs a fixed resourceType, e.g. resourceType: Patient")
        profiles = _names(
            ctx, (*path, "profiles"), item.get("profiles"), "profiles",
            "the US Core profile URLs the resource may claim (meta.profile names one of them)",
        )  # fmt: skip
        _check_profiles(ctx, (*path, "profiles"), rtype, profiles, skeleton)
        if check_elements:
            _check_elements(ctx, (*path, "resource"), rtype, skeleton)
        own = uses.knowing()
        try:
            compiled = compile_template(skeleton, own, name="build")
        except TemplateError as exc:
            raise ctx.error((*path, "resource", *exc.path), str(exc)) from None
        when = (
            _expression(ctx, (*path, "when"), item["when"], own, terminology, condition=True)
            if "when" in item
            else None
        )
        uses.add(own)
        identifier_uses = uses.knowing()
        # Read from the resource written, not the record: its focus is the resource.
        business = (
            _expression(
                ctx, (*path, "business_identifier"), item["business_identifier"], identifier_uses, terminology,
                focus="resource",
            )
            if "business_identifier" in item
            else None  # the default, the resource's first identifier, is read directly (stages.map_parsed)
        )  # fmt: skip
        out.append(
            CompiledResource(
                resource_type=rtype,
                profiles=frozenset(profiles),
                build=_function(compiled.source, "build", terminology),
                when=when,
                business_identifier=business,
                paths=compiled.paths,
                references=frozenset(own.references) - {rtype},
            )
        )
    return tuple(out)


def _check_profiles(ctx: _Context, path: Path, rtype: str, profiles: tuple[str, ...], skeleton: dict[str, Any]) -> None:
    from beam_pipeline.mapping.elements import profile_type

    for j, url in enumerate(profiles):
        claimed = profile_type(url)
        if claimed is None:
            raise ctx.error((*path, j), f"{url} is not a profile of US Core 6.1.0 (include/fhir); check the URL")
        if claimed != rtype:
            raise ctx.error((*path, j), f"{url} constrains {claimed}, not {rtype}")
    meta = skeleton.get("meta")
    if not (isinstance(meta, dict) and meta.get("profile")):
        raise ctx.error(
            (*path[:-1], "resource"), "the skeleton needs meta.profile: the profile(s) it claims, from profiles"
        )
    for j, value in enumerate(meta["profile"] if isinstance(meta["profile"], list) else [meta["profile"]]):
        if isinstance(value, str) and "{{" not in value and value not in profiles:
            raise ctx.error((*path[:-1], "resource", "meta", "profile", j), f"{value} is not listed in profiles")


def _check_elements(ctx: _Context, path: Path, rtype: str, skeleton: dict[str, Any]) -> None:
    from beam_pipeline.mapping.elements import unknown_element

    for element, where in element_paths(skeleton):
        problem = unknown_element(rtype, element)
        if problem is not None:
            raise ctx.error((*path, *where), problem)


# Parts of a mapping file that do not change what it writes: they leave its content version as it is.
_UNVERSIONED = frozenset({"title", "description", "samples"})


def _version(spec: dict[str, Any], terminology: Terminology, used: Iterable[str], texts: dict[str, str]) -> str:
    """What the mapping writes depends on: its spec (comments, titles and samples aside) and the terminology
    files it uses. A resource's meta.tag carries this, so a search finds what an old version wrote."""
    digest = hashlib.sha256(
        json.dumps({k: v for k, v in spec.items() if k not in _UNVERSIONED}, sort_keys=True).encode()
    )
    for ident in sorted(used):
        digest.update(b"\x00" + texts.get(terminology.sources.get(ident, ""), "").encode())
    return digest.hexdigest()[:12]


def compile_mapping(
    source: SourceFile,
    terminology: Terminology,
    terminology_texts: dict[str, str] | None = None,
    *,
    check_elements: bool = True,
) -> CompiledMapping:
    """A mapping file's text -> its CompiledMapping; MappingError naming the file, the line and the fix."""
    try:
        spec, lines = load_yaml(source.text)
    except YamlError as exc:
        raise MappingError(source.name, exc.line, f"{exc}; fix the YAML syntax there") from None
    ctx = _Context(source.name, lines)
    if not isinstance(spec, dict):
        raise ctx.error((), "a mapping file is a YAML object with id, recognise and resources")
    unknown = [k for k in spec if k not in TOP_KEYS]
    if unknown:
        raise ctx.error((unknown[0],), f"unknown key '{unknown[0]}'; a mapping has {', '.join(TOP_KEYS)}")
    ident = spec.get("id")
    if not isinstance(ident, str) or not _ID.match(ident):
        raise ctx.error(("id",), "id is required: lower-case letters, digits and '-', e.g. synthea-patient")
    recognise = spec.get("recognise") or {}
    if not isinstance(recognise, dict) or set(recognise) - {"types", "default"}:
        raise ctx.error(("recognise",), "recognise takes types (a list of message type values) and default")
    types = tuple(
        t.strip().lower()
        for t in _names(
            ctx, ("recognise", "types"), recognise.get("types"), "types", "message type values, e.g. [patient]"
        )
    )
    default = recognise.get("default", False)
    business_filters = spec.get("business_filters", False)
    for key, value in (("default", default), ("business_filters", business_filters)):
        if not isinstance(value, bool):
            raise ctx.error(("recognise", key) if key == "default" else (key,), f"{key} is true or false")
    if "skip" in spec:
        return _skip_mapping(source, ctx, spec, types, default, business_filters, terminology)
    lets: list[tuple[str, Function]] = []
    defined = set(BUILT_IN_VARIABLES)
    let_spec = spec.get("let") or {}
    if not isinstance(let_spec, dict):
        raise ctx.error(("let",), "let maps names to expressions, e.g. state: STATE.lower()")
    # Each expression is checked against what it may name, so an error names the line that names it.
    uses = Uses(
        known_variables=frozenset(defined | set(let_spec)),
        known_maps=frozenset(terminology.maps),
        known_sets=frozenset(terminology.value_sets),
    )
    for name, text in let_spec.items():
        if not _NAME.match(name) or name in BUILT_IN_VARIABLES:
            raise ctx.error(("let", name), f"'{name}' cannot be a variable name (letters, digits, _; not a built-in)")
        before = uses.knowing()
        lets.append((name, _expression(ctx, ("let", name), text, before, terminology)))
        undefined = before.variables - defined
        if undefined:
            raise ctx.error(("let", name), f"%{sorted(undefined)[0]} is used before it is defined; define it above")
        uses.add(before)
        defined.add(name)
    filters = []
    for i, item in enumerate(spec.get("filter") or []):
        if not isinstance(item, dict) or set(item) != {"when", "reason"}:
            raise ctx.error(("filter", i), "a filter is {when: expression, reason: text}")
        reason = _detail(ctx, ("filter", i, "reason"), item["reason"])
        filters.append(
            (_expression(ctx, ("filter", i, "when"), item["when"], uses, terminology, condition=True), reason)
        )
    steps = _steps(ctx, spec.get("validate"), uses, terminology)
    resources = _resources(ctx, spec.get("resources"), uses, terminology, check_elements)
    samples = spec.get("samples") or []
    if not isinstance(samples, list) or not all(isinstance(m, dict) for m in samples):
        raise ctx.error(("samples",), "samples is a list of raw messages (JSON objects) this mapping must map")
    version = _version(spec, terminology, uses.translations | uses.value_sets, terminology_texts or {})
    return CompiledMapping(
        id=ident,
        version=version,
        file=source.name,
        message_type=types[0],
        types=types,
        default=default,
        business_filters=business_filters,
        lets=tuple(lets),
        filters=tuple(filters),
        steps=steps,
        compute_lets=_fused_lets(tuple(sorted(uses.fields)), tuple(uses.paths), tuple(lets), terminology),
        checks=_fused_checks(tuple(filters), steps, terminology),
        resources=resources,
        references=frozenset(uses.references),
        fields=tuple(sorted(uses.fields)),
        samples=tuple((line_of(lines, ("samples", i)), message) for i, message in enumerate(samples)),
        lines={
            "id": line_of(lines, ("id",)),
            "types": line_of(lines, ("recognise", "types")),
            "default": line_of(lines, ("recognise", "default")),
        },
    )


def _skip_mapping(  # noqa: PLR0913
    source: SourceFile,
    ctx: _Context,
    spec: dict[str, Any],
    types: tuple[str, ...],
    default: bool,  # noqa: FBT001
    business_filters: bool,  # noqa: FBT001
    terminology: Terminology,
) -> CompiledMapping:
    """A mapping that recognises its types only to skip them: one filter that always applies, no resources."""
    extra = [k for k in spec if k not in SKIP_KEYS]
    if extra:
        raise ctx.error((extra[0],), f"a skip mapping writes nothing: it takes {', '.join(SKIP_KEYS)} only")
    reason = _detail(ctx, ("skip",), spec["skip"])
    filters = ((_expression(ctx, ("skip",), "true", Uses(), terminology, condition=True), reason),)
    return CompiledMapping(
        id=spec["id"],
        version=_version(spec, terminology, (), {}),
        file=source.name,
        message_type=types[0],
        types=types,
        default=default,
        business_filters=business_filters,
        lets=(),
        filters=filters,
        steps=(),
        compute_lets=_fused_lets((), (), (), terminology),
        checks=_fused_checks(filters, (), terminology),
        resources=(),
        references=frozenset(),
        fields=(),
        lines={
            "id": line_of(ctx.lines, ("id",)),
            "types": line_of(ctx.lines, ("recognise", "types")),
            "default": line_of(ctx.lines, ("recognise", "default")),
        },
    )


# -- fused: one function per mapping for its lets, and one for its filters and checks -------------------


def _fused_lets(
    fields: tuple[str, ...], paths: tuple[str, ...], lets: tuple[tuple[str, Function], ...], terminology: Terminology
) -> Function:
    """(record, env) -> env with the record's fields and paths read (the F table: runtime.read_fields, with
    runtime.get inlined for text) and every let computed, in order, in one call."""
    body = ["    g = r.get", "    F = env['$fields'] = {}"]
    for name in fields:
        body += [
            f"    v = g({name!r})",
            f"    F[{name!r}] = {runtime.READ_V}",
        ]
    below: dict[str, list[str]] = {}
    for path in sorted(paths, key=runtime.path_order):
        parent, _, name = path.rpartition(".")
        below.setdefault(parent, []).append(name)
    for parent, names in sorted(below.items(), key=lambda item: runtime.path_order(item[0])):
        # runtime.nav, inlined for the usual parent (one object) and read once for all its children.
        body += [f"    c = F[{parent!r}]", "    if len(c) == 1 and type(d := c[0]) is dict:", "        h = d.get"]
        for name in names:
            body += [
                f"        v = h({name!r})",
                f"        F['{parent}.{name}'] = {runtime.READ_V}",
            ]
        body.append("    else:")
        body += [f"        F['{parent}.{name}'] = nav(c, {name!r})" for name in names]
    body += [f"    env[{name!r}] = {function.source}" for name, function in lets]
    source = "def lets(r, env):\n" + "\n".join(body) + "\n    return env\n"
    return _function(source, "lets", terminology)


def _fused_checks(
    filters: tuple[tuple[Function, str], ...], steps: tuple[Step, ...], terminology: Terminology
) -> Function:
    """(record, env, plain) -> the first filter or check that applies (Filtered or Error), or None: the whole
    of a mapping's filter and validate as one function, so a message pays one call for them. `plain`: no
    text of the record can hold a control character (see `check`), so a fields check tests types only."""
    body = []
    constants: dict[str, Any] = {
        "field_problem": _field_problem, "clean_leaves": _clean_leaves, "clean_kinds": _clean_kinds, "o": o,
    }  # fmt: skip
    for i, (function, reason) in enumerate(filters):
        constants[f"FILTERED{i}"] = o.Filtered(reason)
        body.append(f"    if {function.source}: return FILTERED{i}")
    for i, step in enumerate(steps):
        constants[f"NAMES{i}"] = step.names
        if step.kind == "when":
            constants[f"ERROR{i}"] = o.Error(o.VALIDATE, step.code, step.detail)
            body.append(f"    if {step.checks[0].source}: return ERROR{i}")
        elif step.kind == "fields":
            constants[f"TREE{i}"] = field_tree(n for n in step.names if "." in n)
            # The exact check (and its message) only when the quick one cannot vouch for every value.
            body += [
                *_gather_leaves(step.names, constants[f"TREE{i}"]),
                "    if not (clean_kinds(L) if plain else clean_leaves(L)):",
                f"        e = field_problem(r, NAMES{i}, TREE{i})",
                "        if e is not None: return e",
            ]
        elif step.kind == "required":
            values = ", ".join(f.source for f in step.checks)
            # The names are listed only when one is missing: a message that has them all pays one test.
            body += [
                f"    if not ({' and '.join(f.source for f in step.checks)}):",
                f"        m = [n for n, v in zip(NAMES{i}, ({values},)) if not v]",
                f"        return o.Error(o.VALIDATE, {step.code!r}, 'missing or empty: ' + ', '.join(m))",
            ]
        else:  # dates, one test each
            for j, (name, function) in enumerate(zip(step.names, step.checks, strict=True)):
                detail = f"{name} is not a valid date or date-time"
                constants[f"DATE{i}_{j}"] = o.Error(o.VALIDATE, o.INVALID_DATE, detail)
                body += [
                    f"    v = {function.source}",
                    "    if v and not (f_toDateTime(v) if len(v) == 1 else all(f_toDateTime([x]) for x in v)):",
                    f"        return DATE{i}_{j}",
                ]
    source = "def checks(r, env, plain=False):\n    F = env['$fields']\n" + "\n".join(body) + "\n    return None\n"
    return _function(source, "checks", terminology, **constants)


# -- running one ------------------------------------------------------------------------------------


def _wrong_type(value: Any) -> bool:  # noqa: ANN401
    if value is None:
        return False
    if isinstance(value, list):
        return any(_wrong_type(v) for v in value)
    return isinstance(value, bool) or not isinstance(value, str | int | float)


FieldTree = dict[str, tuple[str | None, "FieldTree"]]


def field_tree(names: Iterable[str]) -> FieldTree:
    """Dotted field names as a tree of their parts, so a record is walked once for all of them (the names
    of a nested message share their prefixes: patient.name.family, patient.name.given, ...)."""
    root: dict[str, list[Any]] = {}
    for name in names:
        node = root
        parts = name.split(".")
        for depth, part in enumerate(parts):
            entry = node.setdefault(part, [None, {}])
            if depth == len(parts) - 1:
                entry[0] = name
            node = entry[1]

    def freeze(node: dict[str, list[Any]]) -> FieldTree:
        return {part: (name, freeze(children)) for part, (name, children) in node.items()}

    return freeze(root)


def _walk(values: list[Any], tree: FieldTree, found: dict[str, Any]) -> None:
    """The value of every name in `tree` below `values` into `found` (lists flattened; one value as itself)."""
    for part, (name, below) in tree.items():
        children: list[Any] = []
        for value in values:
            if type(value) is dict:
                child = value.get(part)
                if type(child) is list:
                    children.extend(child)
                elif child is not None:
                    children.append(child)
        if name is not None and children:
            found[name] = children[0] if len(children) == 1 else children
        if below and children:
            _walk(children, below, found)


def _gather_leaves(names: tuple[str, ...], tree: FieldTree) -> list[str]:
    """Source that puts into `L` the value of every name of a fields check, as the record holds it: the
    flat names in one call, the dotted ones by walking `tree` as `_walk` does (lists flattened one level,
    only objects entered), unrolled for this tree."""
    flat = tuple(n for n in names if "." not in n)
    lines = [f"    L = list(map(r.get, {flat!r}))"]

    def walk(parent: str, node: FieldTree, depth: int) -> None:
        pad = "    " * (depth + 1)
        leaves = tuple(part for part, (name, below) in node.items() if name is not None and not below)
        if leaves:
            lines.append(f"{pad}L += map({parent}.get, {leaves!r})")
        for part, (name, below) in node.items():
            if not below:
                continue
            x, y = f"x{depth}", f"y{depth}"
            lines.append(f"{pad}{x} = {parent}.get({part!r})")
            if name is not None:
                lines.append(f"{pad}L.append({x})")
            lines.extend(
                (
                    f"{pad}for {y} in ({x} if type({x}) is list else ({x},)):",
                    f"{pad}    if type({y}) is dict:",
                )
            )
            walk(y, below, depth + 2)

    walk("r", tree, 0)
    return lines


_SCALAR_KINDS = frozenset({str, int, float, type(None)})


def _flat(values: list[Any]) -> list[Any]:
    """The values with a list's items in its place (one level), built at C speed."""
    return [*(v for v in values if type(v) is not list), *chain.from_iterable(v for v in values if type(v) is list)]


def _clean_kinds(values: list[Any]) -> bool:
    """True when every value (a list's items counted, one level) is text, a number or null: `_clean_leaves`
    for a record whose text is known to hold no control character."""
    kinds = set(map(type, values))
    if list in kinds:  # the lists' items' kinds in their place (a list in a list stays a list: not clean)
        kinds.discard(list)
        kinds.update(map(type, chain.from_iterable([v for v in values if type(v) is list])))
    return kinds <= _SCALAR_KINDS


def _clean_leaves(values: list[Any]) -> bool:
    """True when every value (a list's items counted, one level) is printable text, a number or null: then
    `_field_problem` finds nothing. False when it might: it decides, and names the field."""
    kinds = set(map(type, values))
    if list in kinds:
        values = _flat(values)
        kinds = set(map(type, values))
    if not kinds <= _SCALAR_KINDS:
        return False
    if int in kinds or float in kinds:
        values = [v for v in values if type(v) is str]
    # One C-level pass over all the text: printable throughout means no control character anywhere.
    return "".join(filter(None, values)).isprintable()


def _has_control(value: Any) -> bool:  # noqa: ANN401
    if isinstance(value, str):
        return not value.isprintable() and _CONTROL.search(value) is not None
    return isinstance(value, list) and any(_has_control(v) for v in value)


def _field_problem(record: dict[str, Any], names: tuple[str, ...], tree: FieldTree | None = None) -> o.Error | None:
    """`names` that are neither text, a number nor null, or carry control characters; `tree`: the dotted
    ones (field_tree), walked once."""
    bad, controls = [], []
    nested: dict[str, Any] = {}
    if tree:
        _walk([record], tree, nested)
    for name in names:
        value = record.get(name) if "." not in name else nested.get(name)
        kind = type(value)
        if kind is str:
            # Nearly every value: printable text, one C-level check.
            if not value.isprintable() and _CONTROL.search(value):
                controls.append(name)
        elif value is not None and kind is not int and kind is not float:
            if _wrong_type(value):
                bad.append(name)
            elif _has_control(value):
                controls.append(name)
    if bad:
        return o.Error(o.VALIDATE, o.INVALID_FIELD_TYPE, f"not text or a number: {', '.join(bad)}")
    if controls:
        return o.Error(o.VALIDATE, o.INVALID_CHARACTERS, f"control characters in: {', '.join(controls)}")
    return None


def environment(mapping: CompiledMapping, record: dict[str, Any], settings: dict[str, list[Any]]) -> dict[str, Any]:
    env = dict(settings)
    env["record"] = [record]
    return mapping.compute_lets(record, env)


def check(
    mapping: CompiledMapping, record: dict[str, Any], env: dict[str, Any], *, plain: bool = False
) -> o.Filtered | o.Error | None:
    """The mapping's filters, then its checks in order: the first that applies, or None. `plain`: the record
    was parsed by a strict JSON decoder from text without a backslash, so none of its texts can hold a
    control character (JSON writes them only as escapes)."""
    return mapping.checks(record, env, plain)
