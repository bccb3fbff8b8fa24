"""The search-filter language for runs, and order-by clauses.

A filter is one or more comparisons joined with ``AND`` and ``OR``, grouped with parentheses::

    metrics.val.acc > 0.9 AND (params.optimizer = 'adam' OR tags.team IN ('vision', 'nlp'))

``AND`` binds tighter than ``OR``; keywords and operators are case-insensitive.

Fields
    ``metrics.<key>``, ``params.<key>``, ``tags.<key>`` and ``attributes.<name>``. The prefixes
    ``metric``, ``param``, ``parameter(s)``, ``tag``, ``attribute``, ``attr`` and ``run`` work
    too. A key may contain dots (``metrics.val.acc`` is the metric ``val.acc``); a key with other
    characters is quoted with backticks or double quotes: ``metrics.`my key```, ``params."a b"``.
    Attributes may be written without a prefix (``status = 'FINISHED'``). They are ``status``,
    ``name`` (alias ``run_name``), ``run_id`` (alias ``id``), ``experiment_id``, ``user``,
    ``parent_run_id``, ``host``, ``lifecycle_stage`` and the times ``start_time`` (alias
    ``created``), ``end_time`` and ``heartbeat_time``.

Operators
    Metrics and times: ``=  !=  <  <=  >  >=``, compared with a number (``1e-3``, ``-2``, ``nan``,
    ``inf``, ``-inf``). Times also take a quoted ISO-8601 date or date-time, such as
    ``start_time > '2024-05-01'`` (without a time zone it is UTC).
    Params, tags and text attributes: ``=  !=  LIKE  ILIKE  NOT LIKE  NOT ILIKE`` with a quoted
    string (``'...'`` or ``"..."``; write a quote inside by doubling it or as ``\\'``), and
    ``IN`` / ``NOT IN`` with a list such as ``('a', 'b')``. ``LIKE`` patterns use ``%`` for any
    text and ``_`` for one character. A bare number is read as its text: ``params.lr = 0.1``.
    ``status`` is one of RUNNING, FINISHED, FAILED or KILLED; ``lifecycle_stage`` is ``active``
    or ``deleted``.
    Every field: ``IS NULL`` and ``IS NOT NULL`` (the run has no such metric, param or tag).

Order by
    A list of ``<field> [ASC|DESC]`` (ascending unless told), also comma-separated in one string:
    ``metrics.acc DESC, start_time``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple, TypeAlias

from loopml.core.entities import LifecycleStage, RunStatus
from loopml.errors import FilterSyntaxError

__all__ = [
    "NUMERIC_ATTRIBUTES",
    "STRING_ATTRIBUTES",
    "And",
    "Comparison",
    "Expr",
    "Field",
    "FieldKind",
    "Or",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]

FieldKind = Literal["metric", "param", "tag", "attribute"]
Value: TypeAlias = "float | int | str | tuple[str, ...] | tuple[float, ...] | None"


@dataclass(frozen=True, slots=True)
class Field:
    kind: FieldKind
    key: str


@dataclass(frozen=True, slots=True)
class Comparison:
    field: Field
    op: str
    value: Value
    position: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


Expr: TypeAlias = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool


STRING_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "status",
        "name",
        "run_id",
        "experiment_id",
        "user",
        "parent_run_id",
        "host",
        "lifecycle_stage",
    }
)
NUMERIC_ATTRIBUTES: frozenset[str] = frozenset({"start_time", "end_time", "heartbeat_time"})
_ATTRIBUTES = STRING_ATTRIBUTES | NUMERIC_ATTRIBUTES
_ALIASES = {"run_name": "name", "id": "run_id", "created": "start_time"}
_PREFIXES: dict[str, FieldKind] = {
    **dict.fromkeys(("metrics", "metric"), "metric"),
    **dict.fromkeys(("params", "param", "parameters", "parameter"), "param"),
    **dict.fromkeys(("tags", "tag"), "tag"),
    **dict.fromkeys(("attributes", "attribute", "attr", "run"), "attribute"),
}
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=", *_NULL_OPS)
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN", *_NULL_OPS)
_WORD_OPS = frozenset(_STRING_OPS[2:])
_SYMBOLS = {"==": "=", "!=": "!=", "<>": "!=", "<=": "<=", ">=": ">=", "=": "=", "<": "<", ">": ">"}
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "LIKE", "ILIKE", "NULL", "ASC", "DESC"})
# Attributes with a closed set of values: (canonical values, how to normalize what was written)
_CHOICES = {
    "status": ([s.value for s in RunStatus], str.upper),
    "lifecycle_stage": ([s.value for s in LifecycleStage], str.lower),
}
_WORD_CHARS = r"A-Za-z0-9_\-.:/"
_WORD_RE = re.compile(f"[{_WORD_CHARS}]+")
_NUMBER_RE = re.compile(
    rf"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|inf(?:inity)?|nan)(?![{_WORD_CHARS}])", re.I
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_DEPTH = 100


class _Tok(NamedTuple):
    kind: str  # word, num, str (quoted with ' or "), bq (backticks), op, "(", ")", ",", end
    text: str  # the source text
    value: str  # unquoted string, or canonical operator
    start: int
    end: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            toks.append(_Tok(c, c, c, i, i + 1))
            i += 1
        elif c in "'\"`":
            value, end = _scan_quoted(text, i)
            toks.append(_Tok("bq" if c == "`" else "str", text[i:end], value, i, end))
            i = end
        elif text[i : i + 2] in _SYMBOLS or c in _SYMBOLS:
            sym = text[i : i + 2] if text[i : i + 2] in _SYMBOLS else c
            toks.append(_Tok("op", sym, _SYMBOLS[sym], i, i + len(sym)))
            i += len(sym)
        elif m := _NUMBER_RE.match(text, i) or _WORD_RE.match(text, i):
            kind = "num" if m.re is _NUMBER_RE else "word"
            toks.append(_Tok(kind, m.group(), m.group(), i, m.end()))
            i = m.end()
        else:
            raise FilterSyntaxError(f"unexpected character {c!r}", text=text, position=i)
    toks.append(_Tok("end", "", "", len(text), len(text)))
    return toks


def _scan_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted string; a doubled quote or a backslash before a quote or backslash escapes."""
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] in (quote, "\\"):
            out.append(text[i + 1])
            i += 2
        elif c == quote and text[i + 1 : i + 2] == quote:
            out.append(quote)
            i += 2
        elif c == quote:
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise FilterSyntaxError("unterminated string starting here", text=text, position=start)


def _number(text: str) -> int | float:
    digits = text.lstrip("+-")
    return int(text) if digits.isdigit() and len(digits) < 1000 else float(text)


def _iso_to_ms(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text, self.what = text, what
        self.toks = _tokenize(text)
        self.i = self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def word(self, tok: _Tok) -> str:
        return tok.text.upper() if tok.kind == "word" else ""

    def error(self, message: str, tok: _Tok) -> FilterSyntaxError:
        return FilterSyntaxError(message, text=self.text, position=tok.start)

    def expected(self, what: str, tok: _Tok) -> FilterSyntaxError:
        if tok.kind == "end":
            return self.error(f"unexpected end of {self.what}: expected {what}", tok)
        return self.error(f"expected {what}, got {tok.text!r}", tok)

    def parse_or(self) -> Expr:
        return self.parse_chain(Or, self.parse_and)

    def parse_and(self) -> Expr:
        return self.parse_chain(And, self.parse_primary)

    def parse_chain(self, kind: type[And] | type[Or], operand: Callable[[], Expr]) -> Expr:
        """Read ``operand (AND|OR operand)*``, flattening nested groups of the same kind."""
        items = [operand()]
        while self.word(self.peek()) == kind.__name__.upper():
            self.next()
            items.append(operand())
        if len(items) == 1:
            return items[0]
        flat: list[Expr] = []
        for item in items:
            flat.extend(item.items if isinstance(item, kind) else (item,))
        return kind(tuple(flat))

    def parse_primary(self) -> Expr:
        if self.peek().kind != "(":
            return self.parse_comparison()
        if self.depth >= _MAX_DEPTH:
            raise self.error(f"parentheses nested deeper than {_MAX_DEPTH}", self.peek())
        self.depth += 1
        self.next()
        expr = self.parse_or()
        tok = self.next()
        if tok.kind != ")":
            raise self.expected("AND, OR or ')'", tok)
        self.depth -= 1
        return expr

    def parse_field(self) -> tuple[Field, str]:
        """Read a field; return it with its source text, for messages."""
        tok = self.next()
        if tok.kind == "bq" or (tok.kind == "word" and self.word(tok) not in _KEYWORDS):
            prefix, dot, rest = tok.text.partition(".")
            kind = _PREFIXES.get(prefix.lower()) if dot and tok.kind == "word" else None
            if kind is None:
                name = _ALIASES.get(tok.value.lower(), tok.value.lower())
                if tok.kind == "word" and name in _ATTRIBUTES:
                    return Field("attribute", name), tok.text
                raise self.error(
                    f"unknown field {tok.value!r}: "
                    "prefix it with metrics., params., tags. or attributes.",
                    tok,
                )
            key, end = rest, tok.end
            if not rest:
                quoted = self.peek()
                if quoted.start != tok.end or quoted.text[:1] not in ('"', "`"):
                    raise self.expected(f"a key after {tok.text!r}", quoted)
                key, end = self.next().value, quoted.end
            if kind == "attribute":
                key = _ALIASES.get(key.lower(), key.lower())
                if key not in _ATTRIBUTES:
                    valid = ", ".join(sorted(_ATTRIBUTES))
                    raise self.error(f"unknown attribute {key!r}: use one of {valid}", tok)
            return Field(kind, key), self.text[tok.start : end]
        if tok.kind == "end":
            raise self.expected("a field such as metrics.acc", tok)
        raise self.error(
            f"unexpected token {tok.text!r}: expected a field such as metrics.acc", tok
        )

    def parse_operator(self, label: str) -> str:
        tok = self.next()
        if tok.kind == "op":
            return tok.value
        op = self.word(tok)
        if not op or not any(o == op or o.startswith(f"{op} ") for o in _WORD_OPS):
            raise self.expected(f"a comparison operator after {label}", tok)
        while op not in _WORD_OPS:  # a word operator goes on: NOT LIKE, IS NOT NULL, ...
            nexts = sorted(
                {o[len(op) + 1 :].split()[0] for o in _WORD_OPS if o.startswith(op + " ")}
            )
            tok = self.next()
            if self.word(tok) not in nexts:
                wanted = ", ".join(nexts[:-1]) + " or " * (len(nexts) > 1) + nexts[-1]
                raise self.expected(f"{wanted} after {op}", tok)
            op = f"{op} {self.word(tok)}"
        return op

    def parse_comparison(self) -> Comparison:
        start = self.peek().start
        field, label = self.parse_field()
        op_tok = self.peek()
        op = self.parse_operator(label)
        numeric = field.kind == "metric" or field.key in NUMERIC_ATTRIBUTES
        allowed = _NUMERIC_OPS if numeric else _STRING_OPS
        if op not in allowed:
            kind = f"{'numeric' if numeric else 'string'} attribute"
            kind = kind if field.kind == "attribute" else field.kind
            raise self.error(
                f"operator {op} is not allowed on {kind} {label}: use one of {', '.join(allowed)}",
                op_tok,
            )
        value: Value = None
        if op in _NULL_OPS:
            pass
        elif numeric:
            value = self.parse_number(field, label)
        elif op in ("IN", "NOT IN"):
            value = self.parse_list(field, label)
        else:
            value = self.parse_string(field, label, exact=op in ("=", "!="))
        return Comparison(field, op, value, start)

    def parse_number(self, field: Field, label: str) -> int | float:
        tok = self.next()
        if tok.kind == "num":
            return _number(tok.text)
        if field.key in NUMERIC_ATTRIBUTES and field.kind == "attribute":
            millis = _iso_to_ms(tok.value) if tok.kind == "str" else None
            if millis is None:
                raise self.expected(f"a number or a quoted ISO-8601 date for {label}", tok)
            return millis
        raise self.expected(f"a number for {label}", tok)

    def parse_list(self, field: Field, label: str) -> tuple[str, ...]:
        tok = self.next()
        if tok.kind != "(":
            raise self.expected(f"'(' to start the list of values for {label}", tok)
        values = [self.parse_string(field, label, exact=True)]
        while (tok := self.next()).kind == ",":
            values.append(self.parse_string(field, label, exact=True))
        if tok.kind != ")":
            raise self.expected("',' or ')' in the list of values", tok)
        return tuple(values)

    def parse_string(self, field: Field, label: str, *, exact: bool) -> str:
        """Read a string value; ``exact`` (not a LIKE pattern) also allows a bare number."""
        tok = self.next()
        if tok.kind == "str" or (tok.kind == "num" and exact):
            value = tok.value
        elif tok.kind == "word" and self.word(tok) not in _KEYWORDS:
            raise self.error(
                f"expected a quoted string for {label}, got {tok.text!r}: write it as '{tok.text}'",
                tok,
            )
        else:
            raise self.expected(f"a quoted string for {label}", tok)
        if exact and field.kind == "attribute" and field.key in _CHOICES:
            choices, normalize = _CHOICES[field.key]
            if normalize(value) not in choices:
                valid = ", ".join(choices)
                raise self.error(f"invalid {field.key} {value!r}: must be one of {valid}", tok)
            return normalize(value)
        return value


def parse_filter(text: str | None) -> Expr | None:
    """Parse a search filter; ``None``, empty or blank text means no filter and gives ``None``."""
    if text is None or not text.strip():
        return None
    parser = _Parser(text, "filter")
    expr = parser.parse_or()
    tok = parser.peek()
    if tok.kind == ")":
        raise parser.error("unexpected token ')': it closes no '('", tok)
    if tok.kind != "end":
        raise parser.error(f"unexpected token {tok.text!r}: expected AND, OR or the end", tok)
    return expr


def parse_order_by(clauses: Sequence[str] | str | None) -> list[OrderKey]:
    """Parse ``<field> [ASC|DESC]`` clauses; one string may hold several, comma-separated."""
    if clauses is None:
        return []
    keys: list[OrderKey] = []
    for clause in [clauses] if isinstance(clauses, str) else clauses:
        if not clause.strip():
            continue
        parser = _Parser(clause, "order-by clause")
        while True:
            field, label = parser.parse_field()
            tok = parser.next()
            direction = parser.word(tok)
            if direction in ("ASC", "DESC"):
                tok = parser.next()
            elif tok.kind not in (",", "end"):
                raise parser.expected(f"ASC or DESC after {label}", tok)
            keys.append(OrderKey(field, direction == "DESC"))
            if tok.kind == "end":
                break
            if tok.kind != ",":
                raise parser.expected("',' or the end of the order-by clause", tok)
    return keys
