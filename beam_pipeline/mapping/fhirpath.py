"""FHIRPath, the subset mappings use, compiled to plain Python source once per worker.

HL7's FHIRPath (https://hl7.org/fhirpath/) is the expression language of US Core's invariants and of
SQL-on-FHIR views; mappings use it over the raw record. A general evaluator (fhirpathpy) runs about 900
Patient mappings a second on one core; compiling each expression into one Python expression over lists
runs the same mapping as fast as hand-written code (docs/mapping.md has the figures).

Every value is a collection (a Python list). Names resolve against the focus: the raw record at the top,
the item inside `where()`, `select()`, `exists(...)`, `all()` and a template's `_for`. Names are read
literally, so a record key `FIRST` or `Patient` is a field, never a type. `%name` is a variable (the
mapping's `let:` values and the settings); `$this` is the focus item.

What is supported is listed in `FUNCTIONS` and `_BINARY`; anything else is refused when the mapping loads,
with the position in the expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from beam_pipeline.mapping import runtime


class FhirPathError(ValueError):
    """An expression the compiler does not accept; `column` counts from 1 within the expression."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


# -- tokens -------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<var>%(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`))
  | (?P<special>\$this|\$index|\$total)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)
  | (?P<op><=|>=|!=|!~|\{\}|[-+*/&|=~<>().,\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_KEYWORD_OPERATORS = frozenset({"and", "or", "xor", "implies", "in", "contains", "div", "mod", "is", "as"})


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    column: int


def _unescape(body: str, column: int) -> str:
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise FhirPathError(f"unknown escape '\\{nxt}' in a string", column + i)
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FhirPathError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = match.lastgroup or ""
        if kind != "space":
            value = match.group()
            if kind == "name" and value in _KEYWORD_OPERATORS:
                kind = "op"
            tokens.append(Token(kind, value, pos + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# -- syntax tree --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    kind: str  # literal | name | var | this | call | index | binary | unary | empty
    value: Any = None
    args: tuple[Node, ...] = ()
    target: Node | None = None
    column: int = 0


# Binary operators by precedence, loosest first (FHIRPath's table, `is`/`as` left out).
_BINARY: tuple[frozenset[str], ...] = (
    frozenset({"implies"}),
    frozenset({"or", "xor"}),
    frozenset({"and"}),
    frozenset({"in", "contains"}),
    frozenset({"=", "~", "!=", "!~"}),
    frozenset({"<", ">", "<=", ">="}),
    frozenset({"|"}),
    frozenset({"+", "-", "&"}),
    frozenset({"*", "/", "div", "mod"}),
)


# Deeper nesting is refused: it would exhaust Python's recursion, or nest the generated code deeper than
# Python compiles. No mapping comes near it.
MAX_NESTING = 40
# A number literal longer than this is not a number a mapping needs (and int() refuses 4,300 digits).
MAX_NUMBER_DIGITS = 40


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def nested(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FhirPathError(f"nested deeper than {MAX_NESTING} levels: split it with let", column)

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self, text: str | None = None) -> Token:
        token = self.tokens[self.pos]
        if text is not None and token.text != text:
            found = token.text or "the end"
            raise FhirPathError(f"expected '{text}' but found '{found}'", token.column)
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.binary(0)
        token = self.peek()
        if token.kind != "end":
            raise FhirPathError(f"unexpected '{token.text}' after a complete expression", token.column)
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek().kind == "op" and self.peek().text in _BINARY[level]:
            op = self.take()
            right = self.binary(level + 1)
            left = Node("binary", op.text, (left, right), column=op.column)
        return left

    def unary(self) -> Node:
        token = self.peek()
        self.nested(token.column)
        try:
            if token.kind == "op" and token.text in ("-", "+"):
                self.take()
                return Node("unary", token.text, (self.unary(),), column=token.column)
            return self.postfix(self.term())
        finally:
            self.depth -= 1

    def term(self) -> Node:
        token = self.take()
        if token.kind == "string":
            return Node("literal", _unescape(token.text[1:-1], token.column + 1), column=token.column)
        if token.kind == "number":
            if len(token.text) > MAX_NUMBER_DIGITS:
                raise FhirPathError(f"a number literal of more than {MAX_NUMBER_DIGITS} digits", token.column)
            number = float(token.text) if "." in token.text else int(token.text)
            return Node("literal", number, column=token.column)
        if token.kind == "var":
            return Node("var", token.text[1:].strip("`"), column=token.column)
        if token.kind == "special":
            if token.text != "$this":
                raise FhirPathError(f"{token.text} is not supported; use $this", token.column)
            return Node("this", column=token.column)
        if token.text == "{}":
            return Node("empty", column=token.column)
        if token.text == "(":
            inner = self.binary(0)
            self.take(")")
            return inner
        if token.kind == "name":
            if token.text in ("true", "false"):
                return Node("literal", token.text == "true", column=token.column)
            name = token.text.strip("`")
            if self.peek().text == "(" and not token.text.startswith("`"):
                return self.call(name, None, token.column)
            return Node("name", name, column=token.column)
        raise FhirPathError(f"unexpected '{token.text or 'end of expression'}'", token.column)

    def call(self, name: str, target: Node | None, column: int) -> Node:
        self.take("(")
        args: list[Node] = []
        if self.peek().text != ")":
            args.append(self.binary(0))
            while self.peek().text == ",":
                self.take()
                args.append(self.binary(0))
        self.take(")")
        return Node("call", name, tuple(args), target, column)

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token.text == ".":
                self.take()
                name_token = self.take()
                if name_token.kind not in ("name", "op") or not re.match(r"[A-Za-z_`]", name_token.text):
                    raise FhirPathError("expected a name after '.'", name_token.column)
                name = name_token.text.strip("`")
                if self.peek().text == "(" and not name_token.text.startswith("`"):
                    node = self.call(name, node, name_token.column)
                else:
                    node = Node("name", name, target=node, column=name_token.column)
            elif token.text == "[":
                self.take()
                index = self.binary(0)
                self.take("]")
                node = Node("index", args=(index,), target=node, column=token.column)
            else:
                return node


def parse(text: str) -> Node:
    return _Parser(text).parse()


# -- compiler -----------------------------------------------------------------------------------------

# name -> (least, most arguments, whether the arguments are evaluated per item of the focus)
FUNCTIONS: dict[str, tuple[int, int, bool]] = {
    # existence and filtering
    "empty": (0, 0, False), "exists": (0, 1, True), "not": (0, 0, False), "count": (0, 0, False),
    "first": (0, 0, False), "last": (0, 0, False), "tail": (0, 0, False), "single": (0, 0, False),
    "distinct": (0, 0, False), "where": (1, 1, True), "select": (1, 1, True), "all": (1, 1, True),
    "iif": (2, 3, False), "hasValue": (0, 0, False),
    # strings
    "lower": (0, 0, False), "upper": (0, 0, False), "trim": (0, 0, False), "length": (0, 0, False),
    "startsWith": (1, 1, False), "endsWith": (1, 1, False), "contains": (1, 1, False),
    "replace": (2, 2, False), "matches": (1, 1, False), "replaceMatches": (2, 2, False),
    "substring": (1, 2, False), "indexOf": (1, 1, False), "split": (1, 1, False), "join": (0, 1, False),
    "toString": (0, 0, False), "toInteger": (0, 0, False), "toDecimal": (0, 0, False),
    "convertsToDecimal": (0, 0, False), "convertsToInteger": (0, 0, False),
    # dates (one parser: beam_pipeline/mapping/fhir_datetime.py)
    "toDateTime": (0, 0, False), "toDate": (0, 0, False), "toInstant": (0, 0, False),
    "convertsToDateTime": (0, 0, False), "today": (0, 0, False),
    # terminology (the mapping set's ConceptMaps and ValueSets)
    "translate": (2, 2, False), "memberOf": (1, 1, False),
    # this project's additions (docs/mapping.md, "Expression reference")
    "coalesce": (1, 9, False), "hashKey": (1, 20, False), "reference": (3, 3, False), "padLeft": (2, 2, False),
    "verhoeff": (0, 0, False),
}  # fmt: skip
# Functions that take no focus: written `name(args)`, never `x.name(args)`.
_STANDALONE = frozenset({"iif", "today", "translate", "coalesce", "hashKey", "reference"})
_OPERATOR_CALLS = {
    "=": "_eq", "!=": "_ne", "~": "_equiv", "!~": "_nequiv", "<": "_lt", ">": "_gt", "<=": "_le", ">=": "_ge",
    "|": "_union", "+": "_plus", "-": "_minus", "&": "_concat", "*": "_times", "/": "_divide", "div": "_div",
    "mod": "_mod", "in": "_in", "contains": "_contains_op", "and": "_and", "or": "_or", "xor": "_xor",
    "implies": "_implies",
}  # fmt: skip


@dataclass(frozen=True)
class Compiled:
    """One expression as Python source over `r` (the focus item), `F` (the record's fields, read once),
    `env` (variables), the runtime's functions (runtime.NAMESPACE) and `tx` (the mapping set's terminology)."""

    source: str
    variables: frozenset[str]
    translations: frozenset[str]  # ConceptMap ids passed to translate() as literals
    value_sets: frozenset[str]
    references: frozenset[str]  # resource types passed to reference() as literals
    fields: frozenset[str]  # record fields read at the top level (the `F` table)
    # Paths below a record field (`patient.name`), each read once per message into F under its dotted text;
    # a prefix is always listed before its extensions when sorted by runtime.path_order.
    paths: frozenset[str] = frozenset()


class _Compiler:
    def __init__(self, focus: str, *, fast: bool = False) -> None:
        self.focus = focus
        self.variables: set[str] = set()
        self.translations: set[str] = set()
        self.value_sets: set[str] = set()
        self.references: set[str] = set()
        self.fields: set[str] = set()
        self.paths: set[str] = set()
        self.depth = 0
        self.fast = fast
        self.memo_off = not fast  # also inside a memoised expression: its parts are not memoised again
        self.substitute: Node | None = None  # the read a memoised expression takes as its argument `c`

    def focus_item(self) -> str:
        return self.focus if self.depth == 0 else f"i{self.depth}"

    def expr(self, node: Node) -> str:
        if node is self.substitute:
            return "c"
        if not self.memo_off:
            read = _memo_read(node)
            if read is not None:
                return self.memoised(node, read)
            names = _memo_names(node)
            if names is not None:
                return self.memoised_item(node, names)
        if node.kind in ("binary", "unary") and _constant(node):
            # Literals only (e.g. a code list `'home' | 'work'`): worked out once, here.
            source = self.expr_uncached(node)
            value = eval(source, dict(runtime.NAMESPACE))  # noqa: S307  (source we generated, no names)
            if all(isinstance(v, str | int | float | bool) for v in value):
                return repr(value)
            return source
        return self.expr_uncached(node)

    def expr_uncached(self, node: Node) -> str:
        kind = node.kind
        if kind == "literal":
            return f"[{node.value!r}]"
        if kind == "empty":
            return "[]"
        if kind == "var":
            self.variables.add(node.value)
            return f"env[{node.value!r}]"
        if kind == "this":
            return f"[{self.focus_item()}]"
        if kind == "name":
            if node.target is None:
                if self.depth == 0 and self.focus == "r":
                    # A field of the record: read once per message (feed.environment), then a dict lookup.
                    self.fields.add(node.value)
                    return f"F[{node.value!r}]"
                return f"get({self.focus_item()}, {node.value!r})"
            path = self.field_path(node)
            if path is not None:
                return f"F[{path!r}]"
            return f"nav({self.expr(node.target)}, {node.value!r})"
        if kind == "index":
            position = node.args[0]
            if position.kind == "literal" and type(position.value) is int and position.value >= 0:
                # runtime.index with a literal position: the slice that holds that item, or nothing.
                return f"{self.expr(node.target)}[{position.value}:{position.value + 1}]"  # type: ignore[arg-type]
            return f"index({self.expr(node.target)}, {self.expr(position)})"  # type: ignore[arg-type]
        if kind == "unary":
            inner = self.expr(node.args[0])
            if node.value == "+":
                return inner
            if node.args[0].kind == "literal" and isinstance(node.args[0].value, int | float):
                return f"[{-node.args[0].value!r}]"
            return f"_negate({inner})"
        if kind == "binary":
            left, right = (self.expr(a) for a in node.args)
            return f"{_OPERATOR_CALLS[node.value]}({left}, {right})"
        if kind == "call":
            return self.call(node)
        raise FhirPathError(f"unsupported expression ({kind})", node.column)

    def memoised(self, node: Node, read: Node) -> str:
        """An expression whose only input is one read of the record (or of the focus item), and that calls
        terminology or a regex: its value for one text is the same for every message, so it is worked out
        once per text (runtime.memo; the key is the expression's own source) and reused."""
        value = self.expr(read)  # registers the field it reads
        self.memo_off, self.substitute = True, read
        try:
            inner = self.expr(node)
        finally:
            self.memo_off, self.substitute = False, None  # (only reached with the fast paths on)
        return f"memo(tx, {inner!r}, {value}, lambda c: {inner})"

    def memoised_item(self, node: Node, names: tuple[str, ...]) -> str:
        """An expression of many calls over a few text fields of one item (a location's parts joined): worked
        out once per combination of their values (runtime.memo_item), recomputed from the item otherwise."""
        item = self.focus_item()
        self.memo_off = True
        try:
            inner = self.expr(node)
        finally:
            self.memo_off = False
        return f"memo_item(tx, {inner!r}, {item}, {names!r}, lambda {item}: {inner})"

    def field_path(self, node: Node) -> str | None:
        """`a.b.c` read from the record: its dotted text, registered with its prefixes (the same path is
        usually read by several expressions of a mapping: nested messages would walk it each time)."""
        names: list[str] = []
        while node.kind == "name" and "." not in node.value:
            names.append(node.value)
            if node.target is None:
                break
            node = node.target
        else:
            return None
        if self.depth != 0 or self.focus != "r":
            return None
        names.reverse()
        self.fields.add(names[0])
        for end in range(2, len(names) + 1):
            self.paths.add(".".join(names[:end]))
        return ".".join(names)

    def cond(self, node: Node) -> str:
        """Python source of a bool: the expression as a condition (FHIRPath's singleton evaluation: one true
        item is true; false, empty and several items are not). `and`/`or` short-circuit and no list is made
        for the usual tests: a condition is true exactly when the expression gives [true]."""
        if node.kind == "binary" and node.value in ("and", "or"):
            left, right = (self.cond(a) for a in node.args)
            return f"({left} {node.value} {right})"
        membership = self.item_membership(node)
        if membership is not None:
            return membership
        if node.kind == "binary" and node.value == "implies":
            return f"(is_false({self.expr(node.args[0])}) or {self.cond(node.args[1])})"
        if node.kind == "call" and node.value in ("exists", "all") and len(node.args) == 1:
            # The collection's one boolean, read directly (a memoised one is a call: its truth).
            source = self.expr(node)
            return source[1:-1] if source.startswith("[") else f"truth({source})"
        if node.kind == "call" and node.target is not None and not node.args:
            item_field = node.target.kind == "name" and node.target.target is None
            item_field = item_field and self.fast and not (self.depth == 0 and self.focus == "r")
            if item_field and node.value in ("exists", "empty"):
                # A field of the focus item tested without making its collection (runtime.has).
                item, name = self.focus_item(), node.target.value
                get = f"{item}.get({name!r})"
                # runtime.has, inlined for an object's text field; anything else asks has(). (No walrus: the
                # condition may end up in a comprehension's iterable, a.where(..).where(..), which forbids it.)
                text = f"type({item}) is dict and type({get}) is str"
                found = f"(({get}.strip() != '') if {text} else has({item}, {name!r}))"
                return found if node.value == "exists" else f"(not {found})"
            if node.value == "exists":
                return f"bool({self.expr(node.target)})"
            if node.value == "empty":
                return f"(not {self.expr(node.target)})"
            if node.value == "not":
                matched = _text_call(node.target, "matches")
                if matched is not None and self.fast:
                    return f"text_matches({self.expr(matched[0])}, {matched[1]!r}, negated=True)"
                return f"is_false({self.expr(node.target)})"
        text_call = (_text_call(node, "contains") or _text_call(node, "matches")) if self.fast else None
        if text_call is not None:
            function = "text_contains" if node.value == "contains" else "text_matches"
            return f"{function}({self.expr(text_call[0])}, {text_call[1]!r})"
        if node.kind == "literal" and isinstance(node.value, bool):
            return repr(node.value)
        # count() first: `x.count() > 1` is also a comparison with a literal, and len() answers it directly.
        counted = _count_comparison(node)
        if counted is not None:
            target, operator, number = counted
            return f"(len({self.expr(target)}) {operator} {number!r})"
        literal = _literal_comparison(node)
        if literal is not None:
            target, function, value = literal
            return f"{function}({self.expr(target)}, {value!r})"
        if self.fast and node.kind == "binary" and node.value in ("<", ">"):
            # Two computed sides (`BIRTHDATE.toDate() > today()`): runtime.is_before reads two texts directly.
            left, right = (self.expr(a) for a in node.args)
            return f"is_before({left}, {right})" if node.value == "<" else f"is_before({right}, {left})"
        return f"truth({self.expr(node)})"

    def item_membership(self, node: Node) -> str | None:
        """`T in ('a' | 'b')`, `T = 'a'` or either .not()-ed inside a criterion, where T is the item (`$this`) or one
        of its fields, optionally lower()/upper()-ed: a set test on the one text when T is one, else the
        general code (runtime's _in, truth and is_false: the same answer, since text equals text only)."""
        negated = node.kind == "call" and node.value == "not" and not node.args and node.target is not None
        test = node.target if negated else node
        if not self.fast or self.depth == 0 or test is None or test.kind != "binary" or test.value not in ("in", "="):
            return None
        left, right = test.args
        if not _constant(right) or (test.value == "=" and (right.kind != "literal" or type(right.value) is not str)):
            return None
        texts = eval(self.expr_uncached(right), dict(runtime.NAMESPACE))  # noqa: S307  (literals only)
        if not texts or not all(type(t) is str for t in texts):
            return None
        call = ""
        if left.kind == "call" and left.value in _SINGLE_CALLS and not left.args and left.target is not None:
            call, left = f".{left.value}()", left.target
        general = f"is_false({self.expr(test)})" if negated else f"truth({self.expr(test)})"
        member = "not in" if negated else "in"
        item = self.focus_item()
        if left.kind == "this":
            return f"(({item}{call} {member} {_text_set(texts)}) if type({item}) is str else {general})"
        if left.kind == "name" and left.target is None and "." not in left.value:
            # An empty text is no value (the test's collection is empty, so it is false either way): it is
            # kept out of the set for `in` and put in it for `not in`. No walrus: see cond's has().
            get = f"{item}.get({left.value!r})"
            options = _text_set({*texts, ""} if negated else set(texts) - {""})
            text = f"type({item}) is dict and type({get}) is str"
            return f"(({get}.strip(){call} {member} {options}) if {text} else {general})"
        return None

    def criterion(self, node: Node) -> tuple[str, str]:
        """The item variable and the condition source of a per-item criterion: where(), exists(), all() test
        each item as a condition in an inline comprehension (f_where and friends apply truth() to the same
        expression: cond is exactly that, without the lambda and the lists)."""
        self.depth += 1
        try:
            return self.focus_item(), self.cond(node)
        finally:
            self.depth -= 1

    def lam(self, node: Node) -> str:
        self.depth += 1
        try:
            return f"(lambda {self.focus_item()}: {self.expr(node)})"
        finally:
            self.depth -= 1

    def call(self, node: Node) -> str:
        name, args = node.value, node.args
        if name not in FUNCTIONS:
            close = [f for f in FUNCTIONS if f.lower() == name.lower()]
            hint = f"; did you mean {close[0]}()?" if close else "; docs/mapping.md lists the functions"
            raise FhirPathError(f"unknown function {name}(){hint}", node.column)
        least, most, per_item = FUNCTIONS[name]
        if not least <= len(args) <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise FhirPathError(f"{name}() takes {wanted} argument(s), not {len(args)}", node.column)
        if name in _STANDALONE:
            if node.target is not None:
                raise FhirPathError(f"{name}() takes no focus: write {name}(...), not x.{name}(...)", node.column)
            return self.standalone(node)
        focus = self.expr(node.target) if node.target is not None else f"[{self.focus_item()}]"
        if name in _CRITERIA and args:
            item, test = self.criterion(args[0])
            return _CRITERIA[name].format(item=item, test=test, focus=focus)
        if per_item:
            return f"f_{name}({focus}{''.join(', ' + self.lam(a) for a in args)})"
        if name == "memberOf":
            self.value_sets.add(_literal(args[0], "memberOf() takes a ValueSet id as a quoted literal"))
            return f"tx.member_of({focus}, {args[0].value!r})"
        return f"f_{name}({focus}{''.join(', ' + self.expr(a) for a in args)})"

    def standalone(self, node: Node) -> str:
        name, args = node.value, node.args
        if name == "iif":
            cond, then = self.cond(args[0]), self.expr(args[1])
            otherwise = self.expr(args[2]) if len(args) == 3 else "[]"
            return f"({then} if {cond} else {otherwise})"
        if name == "today":
            return "env['today']"
        if name == "translate":
            self.translations.add(_literal(args[0], "translate() takes a ConceptMap id as a quoted literal"))
            return f"tx.translate({args[0].value!r}, {self.expr(args[1])})"
        if name == "coalesce":
            # The first non-empty collection, the later ones computed only when needed (f_coalesce's answer:
            # when all are empty, the last, empty, one).
            return "(" + " or ".join(self.expr(a) for a in args) + ")"
        if name == "reference":
            self.references.add(_literal(args[0], "reference() takes a resource type as a quoted literal"))
        joined = ", ".join(self.expr(a) for a in args)
        return f"f_{name}({joined})"


# Per-item functions with a criterion, as comprehensions over `focus` (runtime.f_where, f_exists, f_all).
_CRITERIA = {
    "where": "[{item} for {item} in {focus} if {test}]",
    "exists": "[any({test} for {item} in {focus})]",
    "all": "[all({test} for {item} in {focus})]",
}

_COUNT_COMPARISONS = {"=": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


def _text_set(texts: Iterable[str]) -> str:
    """Source of a set display of `texts`: after `in`, Python compiles it to one constant frozenset."""
    return "{" + ", ".join(repr(t) for t in sorted(set(texts))) + "}"


def _text_call(node: Node | None, name: str) -> tuple[Node, str] | None:
    """`x.contains('T')` (name "contains") as (x, 'T'): a call of `name` on a focus with one text literal."""
    if node is None or node.kind != "call" or node.value != name or node.target is None or len(node.args) != 1:
        return None
    argument = node.args[0]
    return (node.target, argument.value) if argument.kind == "literal" and type(argument.value) is str else None


def _count_comparison(node: Node) -> tuple[Node, str, int] | None:
    """`x.count() > 1` as (x, '>', 1): count() always gives one integer, so the condition is a plain
    comparison of the collection's length (validate steps say "at most one" this way for every field)."""
    if node.kind != "binary" or node.value not in _COUNT_COMPARISONS:
        return None
    left, right = node.args
    if (
        left.kind == "call" and left.value == "count" and left.target is not None and not left.args
        and right.kind == "literal" and type(right.value) is int
    ):  # fmt: skip
        return left.target, _COUNT_COMPARISONS[node.value], right.value
    return None


# Comparisons with one literal, as conditions: runtime functions that read the one item directly and fall
# back to the operator (and truth()) for anything unusual, so the answer is the operator's.
_LITERAL_COMPARISONS = {"=": "is_text", "<": "below", ">": "above"}


def _literal_comparison(node: Node) -> tuple[Node, str, Any] | None:
    """`x = 'text'` as (x, 'is_text', 'text'); `x < 90`, `x > -90` as (x, 'below'/'above', number)."""
    if node.kind != "binary" or node.value not in _LITERAL_COMPARISONS:
        return None
    left, right = node.args
    if right.kind == "unary" and right.value == "-" and right.args[0].kind == "literal":
        right = Node("literal", -right.args[0].value) if type(right.args[0].value) in (int, float) else right
    if right.kind != "literal" or type(right.value) is bool:
        return None
    function = _LITERAL_COMPARISONS[node.value]
    if (function == "is_text") != (type(right.value) is str):
        return None
    return left, function, right.value


# What a memoised expression must call to be worth a table lookup: terminology, and regex rewriting (a
# match alone costs less than a lookup that misses, as every timestamp would).
_MEMO_WORTH = frozenset({"translate", "memberOf", "replaceMatches", "split"})
# Per-item functions: their arguments read each item of their focus, not the record.
_PER_ITEM = frozenset(name for name, (_, _, per_item) in FUNCTIONS.items() if per_item)


def _memo_read(node: Node) -> Node | None:
    """The one read of the focus (a field `STATE`, a path `patient.sex`, an item's `state`) an expression
    depends on, when that read is all it depends on and it calls something worth memoising; else None."""
    if node.kind not in ("call", "binary", "unary", "index", "name") or (node.kind == "name" and _is_path(node)):
        return None
    reads: list[Node] = []
    worth = False

    def walk(n: Node, nested: bool) -> bool:
        nonlocal worth
        if n.kind == "name" and not nested and _is_path(n):
            reads.append(n)
            return True
        if n.kind in ("var", "empty") or (n.kind == "this" and not nested):
            return n.kind == "empty"
        if n.kind == "call":
            if n.value == "today":
                return False
            worth = worth or n.value in _MEMO_WORTH
            inner = nested or n.value in _PER_ITEM
            return (n.target is None or walk(n.target, nested)) and all(walk(a, inner) for a in n.args)
        if n.kind == "name":  # a name below something that is not a read (`translate(...).code`)
            return nested or n.target is None or walk(n.target, nested)
        return (n.target is None or walk(n.target, nested)) and all(walk(a, nested) for a in n.args)

    if walk(node, False) and worth and len(reads) == 1:
        return reads[0]
    return None


# Calls (operators included) an expression of several fields must make to be worth a table lookup.
MEMO_CALLS = 6


def _memo_names(node: Node) -> tuple[str, ...] | None:
    """The fields of the focus item (plain names, no paths) an expression reads, when they are all it reads
    and it makes at least MEMO_CALLS calls (reads included); else None."""
    if node.kind not in ("call", "binary", "unary", "index", "name") or (node.kind == "name" and _is_path(node)):
        return None
    names: set[str] = set()
    calls = 0

    def walk(n: Node, nested: bool) -> bool:
        nonlocal calls
        if n.kind == "name" and not nested and n.target is None:
            names.add(n.value)
            calls += 1  # runtime.get
            return True
        if _constant(n):
            return True  # worked out when the expression compiles
        if n.kind == "name" and not nested and _is_path(n):
            return False  # a path below a field: not one of the item's own values
        if n.kind == "var" or (n.kind == "this" and not nested) or (n.kind == "call" and n.value == "today"):
            return False
        if n.kind in ("call", "binary", "unary", "index"):
            calls += 1
        inner = nested or (n.kind == "call" and n.value in _PER_ITEM)
        return (n.target is None or walk(n.target, nested)) and all(walk(a, inner) for a in n.args)

    if walk(node, False) and names and calls >= MEMO_CALLS:
        return tuple(sorted(names))
    return None


def _is_path(node: Node) -> bool:
    """A name, or a chain of names (`patient.sex`): one read of the focus."""
    while node.target is not None:
        node = node.target
        if node.kind != "name":
            return False
    return True


def _constant(node: Node) -> bool:
    if node.kind in ("literal", "empty"):
        return True
    return node.kind in ("binary", "unary") and all(_constant(a) for a in node.args)


def _literal(node: Node, message: str) -> str:
    if node.kind != "literal" or not isinstance(node.value, str):
        raise FhirPathError(message, node.column)
    return node.value


def compile_expression(text: str, focus: str = "r", *, condition: bool = False, fast: bool = False) -> Compiled:
    """FHIRPath text -> Python source of a collection-valued expression over the focus item named `focus`
    (with `condition`, of a bool: the expression is true); FhirPathError when not accepted. `fast`: the
    fast paths that assume runtime's own field reads (runtime.memo, memo_item, has, is_before), for
    mappings; the profile validator reads FHIR its own way (its get and nav) and compiles without them."""
    compiler = _Compiler(focus, fast=fast)
    tree = parse(text)
    source = compiler.cond(tree) if condition else compiler.expr(tree)
    return Compiled(
        source,
        frozenset(compiler.variables),
        frozenset(compiler.translations),
        frozenset(compiler.value_sets),
        frozenset(compiler.references),
        frozenset(compiler.fields),
        frozenset(compiler.paths),
    )


@dataclass(frozen=True)
class Single:
    """The fast path of an expression that reads one field of an item (`family`, `use.lower()` inside a
    template's `_for`): `raw` is Python source of the field's value as the record holds it. When that is
    text, `text` (a format string, `{}` standing for the stripped text) is the expression's one item: the
    collection is `[text]` when not empty, else `[]`; when it is None the collection is empty. Any other
    value (a list, a number, an object) is not answered here: the caller runs the general code."""

    raw: str
    text: str


# What the fast path applies to the item's text, as runtime.f_lower and f_upper do to one text item.
_SINGLE_CALLS = {"lower": "{}.lower()", "upper": "{}.upper()"}


def single_field(text: str, focus: str) -> Single | None:
    """The fast path of `text` over the item named `focus`, or None when it is not one field of the item
    (optionally lower()/upper()-ed): the general code is then the only code. The record itself (focus
    `r`) has none: its fields are read once into the F table."""
    if focus == "r":
        return None
    try:
        tree = parse(text)
    except FhirPathError:
        return None
    post = "{}"
    if tree.kind == "call" and tree.value in _SINGLE_CALLS and not tree.args and tree.target is not None:
        post, tree = _SINGLE_CALLS[tree.value], tree.target
    if tree.kind != "name" or tree.target is not None:
        return None
    return Single(f"({focus}.get({tree.value!r}) if type({focus}) is dict else None)", post)


def evaluate(
    text: str,
    record: Any,  # noqa: ANN401  (any parsed JSON)
    env: dict[str, list[Any]] | None = None,
    terminology: Any = None,  # noqa: ANN401  (a Terminology, when the expression translates)
) -> list[Any]:
    """Compile and run one expression (tests and the docs' examples; mappings compile once)."""
    compiled = compile_expression(text, fast=True)
    env = dict(env or {})
    env["$fields"] = runtime.read_fields(record, compiled.fields, compiled.paths)
    function = eval(  # noqa: S307  (source we generated)
        f"lambda r, env: (lambda F: {compiled.source})(env['$fields'])", {**runtime.NAMESPACE, "tx": terminology}
    )
    return function(record, env)
