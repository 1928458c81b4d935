"""The mapping engine's fast paths held to its general code over any JSON: each answers the common case
(one text, one object) directly and hands everything else to the general code, so on any value, lists,
objects, numbers, booleans, null and odd text included, it must give what the general code gives."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beam_pipeline.contracts import outcome as o
from beam_pipeline.mapping import feed, runtime
from beam_pipeline.mapping.fhirpath import compile_expression
from beam_pipeline.mapping.template import Uses, compile_template
from beam_pipeline.mapping.terminology import Terminology, TerminologyFile

_NAMES = ("a", "b", "c")
_TEXT = st.sampled_from(["", " ", "x", " Home ", "HOME", "N/A", "n/a", "M", "ma", "Massachusetts", "a,b", "A|B", "é"])
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False), _TEXT, st.text(max_size=6)
)
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_NAMES), inner, max_size=3)),
    max_leaves=10,
)
RECORDS = st.dictionaries(st.sampled_from(_NAMES), JSON, max_size=3)
CASES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TERMINOLOGY = Terminology.from_files(
    [
        TerminologyFile(
            "m.json",
            {
                "resourceType": "ConceptMap",
                "id": "m",
                "group": [
                    {
                        "target": "urn:t",
                        "element": [
                            {"code": "home", "target": [{"code": "H", "display": "Home", "equivalence": "equal"}]},
                            {"code": "ma", "target": [{"code": "MA", "equivalence": "equal"}]},
                            {"code": "x", "target": [{"code": "1"}, {"code": "2", "display": "Two"}]},
                        ],
                    }
                ],
            },
        )
    ]
)


# -- runtime pieces against their plain definitions ---------------------------------------------------


def _scalar_plainly(value: Any) -> list[Any]:  # noqa: ANN401
    """runtime.scalar as the module's docstring states it, one item at a time."""
    if isinstance(value, list):
        return [item for v in value for item in _scalar_plainly(v)]
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if value is None:
        return []
    if type(value) in (int, float):
        return [str(value)]
    return [value]


@CASES
@given(JSON)
def test_a_record_value_reads_as_its_plain_definition(value: Any) -> None:  # noqa: ANN401
    read = runtime.scalar(value)
    assert read == _scalar_plainly(value)
    assert read is not value  # a collection of its own: the record's list is never handed out


@CASES
@given(st.dictionaries(st.sampled_from(_NAMES), JSON, max_size=3) | JSON, st.sampled_from(_NAMES))
@example({"a": " "}, "a")
@example({"a": [" ", None]}, "a")
@example({"a": 0}, "a")
@example({"a": False}, "a")
@example(["a"], "a")
def test_has_is_get_not_empty(item: Any, name: str) -> None:  # noqa: ANN401
    assert runtime.has(item, name) is bool(runtime.get(item, name))


@CASES
@given(RECORDS, st.lists(st.sampled_from(["a.b", "a.c", "b.a", "a.b.c", "a.b.a", "c.c.c"]), max_size=4, unique=True))
def test_the_fused_lets_read_fields_and_paths_as_read_fields_does(record: dict[str, Any], paths: list[str]) -> None:
    fields = tuple(sorted({p.split(".")[0] for p in paths} | {"a"}))
    every = {".".join(p.split(".")[:n]) for p in paths for n in range(2, p.count(".") + 2)}
    lets = feed._fused_lets(fields, tuple(every), (), TERMINOLOGY)
    assert lets(record, {})["$fields"] == runtime.read_fields(record, fields, every)


# -- memoised expressions ---------------------------------------------------------------------------

MEMOISED = [
    "a.split(',')", "a.replaceMatches('[aeiou]', '').split('|')", "translate('m', a.lower())",
    "translate('m', a.lower()).code", "translate('m', a).display", "coalesce(translate('m', a.lower()).code, a)",
    "a.b.split(',').first()", "a.select(translate('m', $this))", "a.where($this.split(',').count() > 1)",
    "iif(translate('m', a.lower()).exists(), 'y', 'n')", "a.replace('a', 'b').split('b')",
    # several fields of one item (runtime.memo_item)
    "(a | ('x ' + b) | ('y ' + c) | b).join(', ')", "coalesce(b.join(' ') + ' ' + c, c, b.join(' '))",
    "a.select((b | ('x ' + c) | ('y ' + a)).join(', '))", "a.where(((b | c) & a).length() > 2 and c.exists())",
    "a.select(($this.c | b | ('x ' + c) | ('y ' + a)).join(', '))",
    # with has() and is_before (the fast paths' conditions) inside
    "a.where(b.exists() and translate('m', c.lower()).empty())", "a.where(b.lower() < c).select(translate('m', b))",
    "iif(a.lower() > b and translate('m', a).exists(), 'y', 'n')",
]  # fmt: skip
# Read more than the fields they name (the item itself, a variable, a path): never memoised on those fields.
NOT_MEMOISED = [
    "($this.b | a | ('x ' + c) | ('y ' + a)).join(', ')", "(a | ('x ' + %v) | ('y ' + c) | b).join(', ')",
    "(a | ('x ' + b.c) | ('y ' + c) | b).join(', ')", "(($this.c | b | ('x ' + c) | ('y ' + a)) & b).join(', ')",
]  # fmt: skip


def _run(text: str, record: dict[str, Any], *, fast: bool, condition: bool = False) -> Any:  # noqa: ANN401
    compiled = compile_expression(text, fast=fast, condition=condition)
    fields = runtime.read_fields(record, compiled.fields, compiled.paths)
    function = eval(  # noqa: S307  (source the compiler generated)
        f"lambda r, env: (lambda F: {compiled.source})(env['$fields'])", {**runtime.NAMESPACE, "tx": TERMINOLOGY}
    )
    return function(record, {"$fields": fields, "record": [record], "v": [record.get("c")] if "c" in record else []})


def test_the_shipped_shapes_are_memoised() -> None:
    for text in MEMOISED:
        assert "memo" in compile_expression(text, fast=True).source, text
    for text in ("a.lower()", "a.matches('x')", "translate('m', %v)", "translate('m', a = b)", *NOT_MEMOISED):
        source = compile_expression(text, fast=True).source
        assert "memo(" not in source and "memo_item(" not in source, text
    # Two reads: each part is memoised on its own read, the union is not.
    assert compile_expression("translate('m', a) | translate('m', b)", fast=True).source.startswith("_union(memo")


@CASES
@given(st.sampled_from(MEMOISED + NOT_MEMOISED), RECORDS)
def test_a_memoised_expression_gives_what_it_computes(text: str, record: dict[str, Any]) -> None:
    expected = _run(text, record, fast=False)
    assert _run(text, record, fast=True) == expected  # first: computed (and kept, for one text)
    assert _run(text, record, fast=True) == expected  # then: from the table
    assert _run(text, copy.deepcopy(record), fast=False) == expected  # nothing it shared was changed


# Records alike in some fields and not in others, in turn: a table keyed on too few values answers wrongly.
NEIGHBOURS = [
    {"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "x", "c": "3"}, {"a": "1", "b": ["2", "y"], "c": "3"},
    {"a": "1", "b": {"c": "z"}, "c": "3"}, {"a": ["1", "x"], "b": "2", "c": "3"}, {"a": "1", "c": "3"},
    {"a": [{"b": "p", "c": "q"}, {"b": "r"}], "b": "2", "c": "3"}, {"a": [{"b": "s", "c": "q"}], "b": "2", "c": "3"},
]  # fmt: skip


def test_records_that_differ_only_in_what_the_key_leaves_out_get_their_own_answers() -> None:
    for text in MEMOISED + NOT_MEMOISED:
        for record in NEIGHBOURS * 2:
            assert _run(text, record, fast=True) == _run(text, record, fast=False), (text, record)


def test_a_full_memo_table_starts_again() -> None:
    table: dict[tuple[str, str], list[Any]] = {}

    class Tx:
        memo = table

    computed: list[str] = []

    def compute(c: list[Any]) -> list[Any]:
        computed.append(c[0])
        return [c[0] + "!"]

    assert runtime.memo(Tx, "k", ["a"], compute) == runtime.memo(Tx, "k", ["a"], compute) == ["a!"]
    assert computed == ["a"]  # the second from the table
    assert runtime.memo(Tx, "other", ["a"], compute) == ["a!"]
    assert computed == ["a", "a"]  # another expression, another entry
    for n in range(runtime.MEMO_LIMIT + 10):
        assert runtime.memo(Tx, "k", [str(n)], lambda c: [c[0] + "!"]) == [f"{n}!"]
    assert len(table) <= runtime.MEMO_LIMIT
    assert runtime.memo(Tx, "k", ["a", "b"], lambda c: [len(c)]) == [2]  # several items: computed, not kept
    assert ("k", "a") not in table


# -- the template's text fast path ------------------------------------------------------------------

SKELETON = {
    "resourceType": "Patient",
    "name": [
        {
            "_for": "a",
            "use": "{{ a.lower() }}",
            "family": "{{ b }}",
            "text": "{{ c.upper() }}",
            "given": ["{{ c }}", "{{ b }}"],
            "suffix": ["{{ a }}"],
        }
    ],
    "address": [{"_for": "b.where(a.exists() or c.empty())", "city": "{{ a }}", "state": "{{ c }}"}],
}


def _builder(*, fast: bool) -> Any:  # noqa: ANN401
    uses = Uses()
    compiled = compile_template(copy.deepcopy(SKELETON), uses, fast=fast)
    namespace: dict[str, Any] = {**runtime.NAMESPACE, "tx": TERMINOLOGY}
    exec(compiled.source, namespace)  # noqa: S102  (source the compiler generated)

    def run(record: dict[str, Any]) -> tuple[str, Any]:
        env = {"record": [record], "$fields": runtime.read_fields(record, uses.fields, uses.paths)}
        try:
            return "ok", namespace["build"](record, env)
        except (runtime.SeveralValues, runtime.Placeholder) as exc:
            return type(exc).__name__, compiled.paths[exc.path_id]

    return run


FAST, GENERAL = _builder(fast=True), _builder(fast=False)


def test_the_fast_path_is_there() -> None:
    uses = Uses()
    assert "if type(x) is str:" in compile_template(copy.deepcopy(SKELETON), uses).source
    assert "if type(x) is str:" not in compile_template(copy.deepcopy(SKELETON), Uses(), fast=False).source


@CASES
@given(RECORDS)
def test_an_items_text_written_directly_is_what_the_general_code_writes(record: dict[str, Any]) -> None:
    assert FAST(record) == GENERAL(record)


# -- the fields check of a message without a backslash ---------------------------------------------

_FIELDS = ("a", "b", "c", "a.b", "a.c", "b.a.c")
_STEP = feed.Step("fields", names=_FIELDS)
_CHECKS = feed._fused_checks((), (_STEP,), Terminology())
_CONTROL_TEXT = st.text(
    alphabet=st.sampled_from(["a", " ", "\x00", "\t", "\n", "\x1f", "\x7f", "\x85", "é"]), max_size=3
)
_FIELD_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _CONTROL_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_NAMES), inner, max_size=3),
    max_leaves=10,
)


@CASES
@given(st.dictionaries(st.sampled_from(_NAMES), _FIELD_JSON, max_size=3), st.booleans())
def test_a_fields_check_without_a_backslash_answers_as_the_exact_walk(record: dict[str, Any], ascii_only: bool) -> None:
    raw = json.dumps(record, ensure_ascii=ascii_only).encode()
    parsed = json.loads(raw)
    exact = feed._field_problem(parsed, _FIELDS, feed.field_tree(n for n in _FIELDS if "." in n))
    answer = feed.check(_mapping(), parsed, {"$fields": {}}, plain=b"\\" not in raw)
    assert answer == exact
    if exact is not None and exact.code == o.INVALID_CHARACTERS:
        assert b"\\" in raw  # a control character only ever arrives escaped


def _mapping() -> Any:  # noqa: ANN401
    class Mapping:
        checks = staticmethod(_CHECKS)

    return Mapping


# -- comparisons of two computed sides -------------------------------------------------------------

_ITEMS = st.lists(
    st.one_of(_SCALARS, st.sampled_from(["2020-01-02", "2020-01-02T03:04:05Z", "2020", "70", "9", "b", "B"])),
    max_size=2,
)


@CASES
@given(_ITEMS, _ITEMS)
def test_is_before_is_the_operators_truth(left: list[Any], right: list[Any]) -> None:
    assert runtime.is_before(left, right) is runtime.truth(runtime._lt(left, right))
    assert runtime.is_before(right, left) is runtime.truth(runtime._gt(left, right))


def test_a_comparison_of_two_computed_sides_compiles_to_is_before() -> None:
    assert compile_expression("a.toDate() > b", condition=True, fast=True).source.startswith("is_before(F['b'], ")
    assert compile_expression("a < b.lower()", condition=True, fast=True).source.startswith("is_before(F['a'], ")
    # The validator's invariants compile without the fast paths: they read FHIR with its own get.
    assert (
        compile_expression("a < b.lower() and c.where(d.exists()).empty()", condition=True).source.count("is_before(")
        == 0
    )


# -- an item's text among literal texts (a code check in a validate step) ------------------------------

MEMBERSHIPS = [
    "a.where(($this.lower() in ('home' | 'x' | 'ma')).not())", "a.where($this.upper() in ('HOME' | 'MA'))",
    "a.where($this in ('x' | ' Home ' | 'M')).exists()", "a.where((b.lower() in ('home' | 'ma')).not()).exists()",
    "a.where(c.exists() and (b.upper() in ('X' | 'N/A')).not())", "a.where(b in ('x' | 'é'))",
    "a.exists(($this.lower() in ('home' | 'x')).not())", "a.all(b.lower() in ('home' | 'ma'))",
    "a.where(b.upper() = 'MA')", "a.where(($this = 'x').not()).exists()", "a.where((b in ('' | 'x')).not())",
    "a.where(b.where(c.lower() = 'x').exists()).where(c.upper() in ('MA' | '')).exists()",
    "a.where(b.exists() or c.empty()).where(c.exists())",
]  # fmt: skip


def test_a_code_check_on_an_items_text_is_a_set_test() -> None:
    for text in MEMBERSHIPS[:-1]:
        assert " in {" in compile_expression(text, fast=True).source, text
        assert " in {" not in compile_expression(text).source, text
    assert ".strip() != ''" in compile_expression(MEMBERSHIPS[-1], fast=True).source


_VALUES = ["", " ", "x", " Home ", "HOME", "home", "N/A", "ma", "MA", "é", 7, 1.5, True, None, {"b": "x"}, ["x", "MA"]]
# Each value as the item, and as an item's field: the cases a random record seldom holds all of.
GRID = [{"a": v} for v in _VALUES] + [{"a": [{"b": v, "c": "1"}, {"b": "ma"}]} for v in _VALUES]


def test_a_set_test_on_an_items_text_answers_as_the_operators_on_every_kind_of_value() -> None:
    for text in MEMBERSHIPS:
        for record in GRID:
            assert _run(text, record, fast=True) == _run(text, record, fast=False), (text, record)


@CASES
@given(st.sampled_from(MEMBERSHIPS), RECORDS)
def test_a_set_test_on_an_items_text_answers_as_the_operators(text: str, record: dict[str, Any]) -> None:
    assert _run(text, record, fast=True) == _run(text, record, fast=False)


# -- a text tested by contains() or matches() in a condition ---------------------------------------------

TEXT_TESTS = [
    "a.contains('T')", "a.contains('ome')", "a.matches('^[a-z]+$')", "a.matches('(Z|[+-][0-9]{2})$').not()",
    "a.matches('[').not()", "a.matches('[')", "a.b.contains('x') and a.b.matches('a').not()",
    "a.where(b.matches('^h')).exists()", "a.all(b.contains('m') or $this.matches('x').not())",
]  # fmt: skip


def test_a_text_tested_in_a_condition_is_read_directly() -> None:
    for text in TEXT_TESTS:
        assert "text_" in compile_expression(text, condition=True, fast=True).source, text
        assert "text_" not in compile_expression(text, condition=True).source, text


def test_a_text_tested_in_a_condition_answers_as_the_functions_on_every_kind_of_value() -> None:
    grid = [*GRID, {"a": "2024-03-05T14:20:00-05:00"}, {"a": "2024-03-05T14:20"}, {"a": {"b": "home"}}]
    for text in TEXT_TESTS:
        for record in grid:
            fast = _run(text, record, fast=True, condition=True)
            assert fast is _run(text, record, fast=False, condition=True), (text, record)


@CASES
@given(st.sampled_from(TEXT_TESTS), RECORDS)
def test_a_text_tested_in_a_condition_answers_as_the_functions(text: str, record: dict[str, Any]) -> None:
    assert _run(text, record, fast=True, condition=True) is _run(text, record, fast=False, condition=True)


_LISTS = [["Avery", " Quinn "], ["x", ""], [" ", "N/A"], ["Avery", 7], ["a", ["b"]], [], ["Massachusetts"]]


def test_an_items_texts_written_directly_are_what_the_general_code_writes_on_every_kind_of_value() -> None:
    for value in [*_VALUES, *_LISTS]:
        for record in ({"a": [{"b": value, "c": value}]}, {"a": [{"b": "x", "c": value}, {"c": "y"}], "b": value}):
            assert FAST(record) == GENERAL(record), record


def test_a_date_is_parsed_once_per_text_and_a_full_table_starts_again() -> None:
    runtime._MOMENTS.clear()
    first = runtime.f_toDateTime(["2024-03-05T14:20:00-05:00"])
    assert first == runtime.f_toDateTime(["2024-03-05T14:20:00-05:00"]) and first[0] is runtime._MOMENTS[first[0].fhir]
    assert runtime.f_toDateTime(["2024-02-30"]) == [] and "2024-02-30" in runtime._MOMENTS  # a refusal is kept too
    for n in range(runtime._MOMENTS_LIMIT + 5):
        runtime.f_toDateTime([f"{1000 + n}-01-01"])
    assert len(runtime._MOMENTS) <= runtime._MOMENTS_LIMIT
    assert runtime.f_toDateTime([first[0]]) == first  # a Moment is itself
