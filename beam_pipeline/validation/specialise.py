"""One compiled Complex as one generated Python function: its required and must-support names, choice
groups and invariants written out as straight-line tests, so checking a value reads no table but its
fields. Same rules, same issues as Complex.check (the generic walk, which recursive structures still use
while they are being compiled); the unit tests run both on the same resources.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from beam_pipeline.validation.checks import primitive_element
from beam_pipeline.validation.issues import ERROR, INFORMATION, Issue

if TYPE_CHECKING:
    from beam_pipeline.validation.checks import Complex
    from beam_pipeline.validation.issues import Check


_NUMBER = itertools.count()
_REMEMBERED = 1024  # distinct passing Codings kept per compiled check (a feed uses few)
_MANY_TYPES = "more than one type of a choice element"
_ABSENT = "must-support element absent"
_EXT_1 = "an extension needs a value or nested extensions, not both"


def specialise(complex_: Complex, rules: tuple[Check, ...] = ()) -> Check:
    """The check of `complex_`, followed by its own rules and then `rules` (an element's binding, fixed or
    pattern value)."""
    names: dict[str, Any] = {
        "Issue": Issue, "ERROR": ERROR, "INFORMATION": INFORMATION, "fields": complex_.fields,
        "primitive_element": primitive_element,
    }  # fmt: skip
    lines = [
        "def check(obj, path, issues, ms, env):",
        "    if type(obj) is not dict:",
        "        issues.append(Issue(path, 'type', ERROR, 'expected an object'))",
        "        return",
        "    if not obj or (len(obj) == 1 and 'id' in obj):",
        "        issues.append(Issue(path, 'ele-1', ERROR, 'an element needs a value or children'))",
        "    get = fields.get",
        "    for key, value in obj.items():",
        "        field = get(key)",
        "        if field is not None:",
        "            if type(value) is not list:",
        "                fast = field.fast",
        "                if fast is not None:",
        "                    if not fast(value):",
        "                        field.bad(value, path + '.' + key, issues)",
        "                    continue",
        "                single = field.single",
        "                if single is not None:",
        "                    single(value, path + '.' + key, issues, ms, env)",
        "                    continue",
        # An array without slices within its maximum: its items in place (Field.check says the rest).
        "            elif value and len(value) <= field.limit:",
        "                each = field.each",
        "                if each is not None:",
        "                    for i, entry in enumerate(value):",
        "                        each(entry, f'{path}.{key}[{i}]', issues, ms, env)",
        "                    continue",
        "                valid = field.each_valid",
        "                if valid is not None:",
        "                    for i, entry in enumerate(value):",
        "                        if not valid(entry):",
        "                            field.bad(entry, f'{path}.{key}[{i}]', issues)",
        "                    continue",
        "            field.check(value, path, issues, ms, env)",
        "        elif key[:1] == '_' and key[1:] in fields:",
        "            primitive_element(value, path + '.' + key, issues, ms, env)",
    ]
    if complex_.root:
        lines += ["        elif key == 'resourceType':", "            continue"]
    lines += [
        "        else:",
        "            issues.append(Issue(path + '.' + key, 'structure', ERROR, 'not an element of this type'))",
    ]
    if complex_.extension:
        lines += [
            "    has_value = False",
            "    for key in obj:",
            "        if key[:5] == 'value':",
            "            has_value = True",
            "            break",
            "    if has_value == ('extension' in obj):",
            f"        issues.append(Issue(path, 'ext-1', ERROR, {_EXT_1!r}))",
        ]
    for i, (name, keys) in enumerate(complex_.choices):
        names[f"choice{i}"] = keys
        lines += [
            f"    if len(choice{i}.intersection(obj)) > 1:",
            f"        issues.append(Issue(path + {'.' + name!r}, 'cardinality', ERROR, {_MANY_TYPES!r}))",
        ]
    for key in complex_.required_keys:
        lines += [
            f"    if {key!r} not in obj and {'_' + key!r} not in obj:",
            f"        issues.append(Issue(path + {'.' + key!r}, 'cardinality', ERROR, 'minimum 1, found 0'))",
        ]
    for key in complex_.must_support_keys:
        lines += [
            f"    if {key!r} not in obj:",
            f"        ms.append(Issue(path + {'.' + key!r}, 'must-support', INFORMATION, {_ABSENT!r}))",
        ]
    if complex_.required or complex_.must_support:
        # Counted minimums and choice elements: rare enough to keep the generic code.
        names["counted"] = complex_.counted
        lines.append("    counted(obj, path, issues, ms)")
    for i, (key, severity, holds) in enumerate(complex_.invariants):
        names[f"holds{i}"] = holds
        failed = f"issues.append(Issue(path, {key!r}, {severity!r}, 'invariant not satisfied'))"
        reads = getattr(holds, "reads", None)
        if reads is not None:
            # The invariant's own test of whether the focus has any name it reads, written out (invariants.py).
            names[f"holds{i}"] = holds.whole  # type: ignore[attr-defined]
            lines.append(f"    if {' or '.join(f'{name!r} in obj' for name in reads)}:")
            indent = "    "
        else:
            indent = ""
        lines += [
            f"{indent}    try:",
            f"{indent}        ok = holds{i}(obj, env)",
            f"{indent}    except Exception:",
            f"{indent}        ok = False",
            f"{indent}    if not ok:",
            f"{indent}        {failed}",
        ]
        if reads is not None and not holds.when_absent:  # type: ignore[attr-defined]
            lines += ["    else:", f"        {failed}"]
    for i, rule in enumerate((*complex_.rules, *rules)):
        names[f"rule{i}"] = rule
        lines.append(f"    rule{i}(obj, path, issues, ms, env)")
    if complex_.terminology and not complex_.invariants:
        # Codings that passed, by content (text and flags only: a nested object or array is not kept).
        names["passed"] = set()
        lines[1:1] = [
            "    try:",
            "        known = tuple(obj.items())",
            "        if known in passed:",
            "            return",
            "    except (AttributeError, TypeError):",
            "        known = None",
            "    before = len(issues) + len(ms)",
        ]
        # Only all-text Codings are kept: `true == 1` would let a number pass for a remembered boolean.
        lines += [
            f"    if known is not None and len(issues) + len(ms) == before and len(passed) < {_REMEMBERED}:",
            "        if all(type(value) is str for value in obj.values()):",
            "            passed.add(known)",
        ]
    # A file name of its own per generated check, so profilers and tracebacks tell them apart.
    code = compile("\n".join(lines), f"<check {next(_NUMBER)}>", "exec")
    exec(code, names)  # noqa: S102  (source generated here from the profile's element names)
    return names["check"]
