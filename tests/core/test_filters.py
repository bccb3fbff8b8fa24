from __future__ import annotations

import math

import pytest

from loopml.core.filters import (
    NUMERIC_ATTRIBUTES,
    STRING_ATTRIBUTES,
    And,
    Comparison,
    Expr,
    Field,
    FieldKind,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from loopml.errors import FilterSyntaxError, InvalidArgument


def one(text: str) -> Comparison:
    expr = parse_filter(text)
    assert isinstance(expr, Comparison), expr
    return expr


def fails(text: str) -> FilterSyntaxError:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert info.value.text == text
    return info.value


def order_fails(clause: str) -> FilterSyntaxError:
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by(clause)
    assert info.value.text == clause
    return info.value


def metric(key: str) -> Field:
    return Field("metric", key)


def attr(key: str) -> Field:
    return Field("attribute", key)


# --- no filter -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_missing_or_blank_filter_means_no_filter(text: str | None) -> None:
    assert parse_filter(text) is None


def test_single_comparison_is_returned_itself_not_wrapped() -> None:
    assert parse_filter("metrics.acc > 0.9") == Comparison(metric("acc"), ">", 0.9, 0)


# --- operators per field kind ----------------------------------------------------------------

NUMERIC_OPS = [
    ("=", "="),
    ("==", "="),
    ("!=", "!="),
    ("<>", "!="),
    ("<", "<"),
    ("<=", "<="),
    (">", ">"),
    (">=", ">="),
]


@pytest.mark.parametrize(("written", "canonical"), NUMERIC_OPS)
def test_metric_accepts_every_numeric_operator(written: str, canonical: str) -> None:
    assert one(f"metrics.loss {written} 3") == Comparison(metric("loss"), canonical, 3, 0)


@pytest.mark.parametrize(("written", "canonical"), NUMERIC_OPS)
def test_numeric_attribute_accepts_every_numeric_operator(written: str, canonical: str) -> None:
    cmp = one(f"attributes.end_time {written} 1700000000000")
    assert (cmp.field, cmp.op, cmp.value) == (attr("end_time"), canonical, 1700000000000)


@pytest.mark.parametrize("field", ["metrics.acc", "start_time", "params.lr", "tags.t", "status"])
@pytest.mark.parametrize(
    ("written", "canonical"), [("IS NULL", "IS NULL"), ("is not null", "IS NOT NULL")]
)
def test_null_checks_work_on_every_field_kind(field: str, written: str, canonical: str) -> None:
    cmp = one(f"{field} {written}")
    assert (cmp.op, cmp.value) == (canonical, None)


STRING_OPS = [
    ("=", "="),
    ("==", "="),
    ("!=", "!="),
    ("<>", "!="),
    ("LIKE", "LIKE"),
    ("like", "LIKE"),
    ("ILIKE", "ILIKE"),
    ("NOT LIKE", "NOT LIKE"),
    ("not  Like", "NOT LIKE"),
    ("NOT ILIKE", "NOT ILIKE"),
]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("params.opt", Field("param", "opt")),
        ("tags.team", Field("tag", "team")),
        ("user", attr("user")),
    ],
)
@pytest.mark.parametrize(("written", "canonical"), STRING_OPS)
def test_text_fields_accept_every_string_operator(
    field: str, expected: Field, written: str, canonical: str
) -> None:
    assert one(f"{field} {written} 'a%'") == Comparison(expected, canonical, "a%", 0)


@pytest.mark.parametrize("field", ["params.opt", "tags.team", "attributes.host"])
@pytest.mark.parametrize(("written", "canonical"), [("IN", "IN"), ("not in", "NOT IN")])
def test_text_fields_accept_in_lists(field: str, written: str, canonical: str) -> None:
    cmp = one(f"{field} {written} ('a', \"b\")")
    assert (cmp.op, cmp.value) == (canonical, ("a", "b"))


@pytest.mark.parametrize(
    ("text", "position", "op", "kind"),
    [
        ("metrics.acc LIKE '9%'", 12, "LIKE", "metric metrics.acc"),
        ("metrics.acc not in (1)", 12, "NOT IN", "metric metrics.acc"),
        ("start_time ILIKE '2024%'", 11, "ILIKE", "numeric attribute start_time"),
        ("params.lr < '0.1'", 10, "<", "param params.lr"),
        ("tags.v >= 'b'", 7, ">=", "tag tags.v"),
        ("status > 'FAILED'", 7, ">", "string attribute status"),
    ],
)
def test_wrong_operator_for_field_kind_names_it_and_lists_the_allowed(
    text: str, position: int, op: str, kind: str
) -> None:
    err = fails(text)
    assert err.position == position
    assert f"operator {op} is not allowed on {kind}" in err.message
    if kind.startswith(("metric", "numeric")):
        assert "=, !=, <, <=, >, >=, IS NULL, IS NOT NULL" in err.message
    else:
        assert "LIKE, ILIKE, NOT LIKE, NOT ILIKE, IN, NOT IN, IS NULL, IS NOT NULL" in err.message


# --- fields, prefixes and aliases ------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("metrics", "metric"),
        ("metric", "metric"),
        ("METRICS", "metric"),
        ("params", "param"),
        ("param", "param"),
        ("parameters", "param"),
        ("Parameter", "param"),
        ("tags", "tag"),
        ("tag", "tag"),
    ],
)
def test_every_prefix_spelling_selects_its_kind(prefix: str, kind: FieldKind) -> None:
    op_value = "> 1" if kind == "metric" else "= 'x'"
    assert one(f"{prefix}.k {op_value}").field == Field(kind, "k")


@pytest.mark.parametrize("prefix", ["attributes", "attribute", "attr", "run", "ATTR"])
def test_every_attribute_prefix_spelling_works(prefix: str) -> None:
    assert one(f"{prefix}.name = 'x'").field == attr("name")


def test_key_may_contain_dots_and_other_identifier_characters() -> None:
    assert one("metrics.val.acc > 0").field == metric("val.acc")
    assert one("params.model/enc-1:lr = '1'").field == Field("param", "model/enc-1:lr")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("metrics.`my key` > 1", metric("my key")),
        ("params.\"a b\" = 'x'", Field("param", "a b")),
        ("tags.`a, (b) = c` = 'x'", Field("tag", "a, (b) = c")),
        ('tags."say ""hi""" = \'x\'', Field("tag", 'say "hi"')),
        ("attributes.`status` = 'RUNNING'", attr("status")),
    ],
)
def test_keys_can_be_quoted_with_backticks_or_double_quotes(text: str, field: Field) -> None:
    assert one(text).field == field


@pytest.mark.parametrize("name", sorted(STRING_ATTRIBUTES - {"status", "lifecycle_stage"}))
def test_every_string_attribute_may_be_written_bare(name: str) -> None:
    assert one(f"{name} = 'x'") == Comparison(attr(name), "=", "x", 0)


@pytest.mark.parametrize("name", sorted(NUMERIC_ATTRIBUTES))
def test_every_numeric_attribute_may_be_written_bare(name: str) -> None:
    assert one(f"{name} >= 5") == Comparison(attr(name), ">=", 5, 0)


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("run_name", "name"),
        ("attributes.run_name", "name"),
        ("id", "run_id"),
        ("run.id", "run_id"),
        ("run_id", "run_id"),
        ("attributes.run_id", "run_id"),
        ("STATUS", "status"),
    ],
)
def test_attribute_aliases_resolve_to_canonical_names(written: str, name: str) -> None:
    value = "'RUNNING'" if name == "status" else "'x'"
    assert one(f"{written} = {value}").field == attr(name)


@pytest.mark.parametrize("written", ["created", "attributes.created"])
def test_created_is_an_alias_of_start_time(written: str) -> None:
    assert one(f"{written} > 10") == Comparison(attr("start_time"), ">", 10, 0)


@pytest.mark.parametrize("text", ["acc > 0.9", "val.acc > 0.9", "`my key` > 1"])
def test_unprefixed_unknown_field_asks_for_a_prefix(text: str) -> None:
    err = fails(text)
    assert err.position == 0
    name = text.split(" >")[0].strip("`")
    assert err.message.splitlines()[0] == (
        f"unknown field '{name}': prefix it with metrics., params., tags. or attributes."
    )


def test_unknown_attribute_lists_the_valid_names_sorted() -> None:
    err = fails("metrics.a > 1 AND attributes.colour = 'red'")
    assert err.position == 18
    valid = ", ".join(sorted(STRING_ATTRIBUTES | NUMERIC_ATTRIBUTES))
    assert "unknown attribute 'colour'" in err.message
    assert valid in err.message


@pytest.mark.parametrize("text", ["metrics. > 1", "params. 'a b' = 'x'", "tags. \"a\" = 'x'"])
def test_prefix_without_key_is_an_error_at_what_follows(text: str) -> None:
    err = fails(text)
    assert err.position == text.index(".") + 2
    assert "expected a key after" in err.message


# --- literals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("3", 3),
        ("-3", -3),
        ("+3", 3),
        ("0.25", 0.25),
        (".5", 0.5),
        ("-1.5e-3", -0.0015),
        ("1E6", 1e6),
        ("inf", math.inf),
        ("INF", math.inf),
        ("-inf", -math.inf),
        ("Infinity", math.inf),
        ("-infinity", -math.inf),
    ],
)
def test_numbers_keep_int_or_float_type(literal: str, value: float) -> None:
    got = one(f"metrics.x = {literal}").value
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize("literal", ["nan", "NaN", "-nan"])
def test_nan_is_a_number(literal: str) -> None:
    got = one(f"metrics.x != {literal}").value
    assert isinstance(got, float)
    assert math.isnan(got)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'plain'", "plain"),
        ('"double"', "double"),
        ("''", ""),
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'back\\\\slash'", "back\\slash"),
        ("'50\\%'", "50\\%"),
        ("'a \"b\" c'", 'a "b" c'),
        ("'AND OR ( )'", "AND OR ( )"),
    ],
)
def test_string_literals_unescape_quotes(literal: str, value: str) -> None:
    assert one(f"params.p = {literal}").value == value


def test_backslash_before_like_wildcard_is_kept_for_the_pattern() -> None:
    assert one("tags.t LIKE '100\\%'").value == "100\\%"


@pytest.mark.parametrize(("literal", "value"), [("0.1", "0.1"), ("1e-3", "1e-3"), ("-2", "-2")])
def test_number_for_text_field_is_read_as_its_source_text(literal: str, value: str) -> None:
    assert one(f"params.lr = {literal}").value == value
    assert one(f"tags.v != {literal}").value == value


def test_numbers_in_in_list_are_read_as_source_text() -> None:
    assert one("params.depth IN (3, '4', 5.0)").value == ("3", "4", "5.0")


@pytest.mark.parametrize("op", ["LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"])
def test_number_for_like_pattern_is_rejected(op: str) -> None:
    text = f"params.lr {op} 0.1"
    err = fails(text)
    assert err.position == text.index("0.1")
    assert "expected a quoted string for params.lr, got '0.1'" in err.message


def test_unquoted_word_value_suggests_quoting() -> None:
    err = fails("params.opt = adam")
    assert err.position == 13
    assert "expected a quoted string for params.opt, got 'adam'" in err.message
    assert "'adam'" in err.message


@pytest.mark.parametrize("literal", ["'0.9'", '"high"', "high", "1.2.3"])
def test_metric_requires_a_number(literal: str) -> None:
    text = f"metrics.acc > {literal}"
    err = fails(text)
    assert err.position == 14
    assert f"expected a number for metrics.acc, got {literal!r}" in err.message


# --- dates for time attributes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "millis"),
    [
        ("'2024-01-01'", 1704067200000),
        ("'2024-01-01T00:00:01'", 1704067201000),
        ("'2024-01-01 00:00:00.250'", 1704067200250),
        ("'2024-01-01T00:00:00Z'", 1704067200000),
        ("'2024-01-01T02:00:00+02:00'", 1704067200000),
        ('"1970-01-01"', 0),
    ],
)
def test_time_attributes_accept_iso_dates_as_utc_milliseconds(literal: str, millis: int) -> None:
    cmp = one(f"start_time >= {literal}")
    assert cmp.value == millis
    assert type(cmp.value) is int


def test_every_time_attribute_accepts_dates() -> None:
    for name in NUMERIC_ATTRIBUTES:
        assert one(f"attributes.{name} < '1970-01-02'").value == 86_400_000


def test_invalid_date_points_at_it() -> None:
    err = fails("end_time < '2024-13-01'")
    assert err.position == 11
    assert "ISO-8601" in err.message
    assert "'2024-13-01'" in err.message


def test_metrics_do_not_accept_dates() -> None:
    err = fails("metrics.t > '2024-01-01'")
    assert err.position == 12
    assert "expected a number for metrics.t" in err.message


# --- closed-vocabulary attributes ------------------------------------------------------------


@pytest.mark.parametrize("written", ["'FINISHED'", "'finished'", '"Finished"'])
def test_status_is_case_insensitive_and_normalized(written: str) -> None:
    assert one(f"status = {written}") == Comparison(attr("status"), "=", "FINISHED", 0)


def test_status_in_list_is_validated_and_normalized() -> None:
    assert one("status IN ('running', 'KILLED')").value == ("RUNNING", "KILLED")
    err = fails("status NOT IN ('running', 'paused')")
    assert err.position == 26
    assert "invalid status 'paused'" in err.message


def test_invalid_status_lists_the_valid_ones() -> None:
    err = fails("attributes.status != 'DONE'")
    assert err.position == 21
    assert err.message.startswith(
        "invalid status 'DONE': must be one of RUNNING, FINISHED, FAILED, KILLED"
    )


def test_status_like_pattern_is_not_validated_as_a_status() -> None:
    assert one("status LIKE 'FIN%'").value == "FIN%"


def test_lifecycle_stage_accepts_active_or_deleted() -> None:
    assert one("lifecycle_stage = 'ACTIVE'").value == "active"
    assert one("lifecycle_stage IN ('deleted')").value == ("deleted",)
    err = fails("lifecycle_stage = 'archived'")
    assert err.position == 18
    assert "invalid lifecycle_stage 'archived'" in err.message
    assert "active" in err.message
    assert "deleted" in err.message


# --- IN lists --------------------------------------------------------------------------------


def test_in_list_may_have_one_value() -> None:
    assert one("tags.t IN ('only')").value == ("only",)


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("params.p IN 'a'", 12, "expected '(' to start the list of values for params.p"),
        ("params.p IN ()", 13, "expected a quoted string for params.p, got ')'"),
        ("params.p IN ('a',)", 17, "expected a quoted string for params.p, got ')'"),
        ("params.p IN ('a' 'b')", 17, "expected ',' or ')' in the list of values, got \"'b'\""),
        ("params.p IN ('a', 'b'", 21, "unexpected end of filter: expected ',' or ')'"),
    ],
)
def test_malformed_in_list_points_at_the_problem(text: str, position: int, fragment: str) -> None:
    err = fails(text)
    assert err.position == position
    assert fragment in err.message


# --- AND, OR and parentheses -----------------------------------------------------------------

A = Comparison(metric("a"), ">", 1, 0)


def comparisons(expr: Expr | None) -> list[str]:
    assert expr is not None
    if isinstance(expr, Comparison):
        return [expr.field.key]
    return [key for item in expr.items for key in comparisons(item)]


def shape(expr: Expr | None) -> object:
    """A compact picture of the tree: keys for comparisons, ("AND"|"OR", ...) for groups."""
    assert expr is not None
    if isinstance(expr, Comparison):
        return expr.field.key
    return (type(expr).__name__.upper(), *(shape(item) for item in expr.items))


def test_and_binds_tighter_than_or() -> None:
    expr = parse_filter("metrics.a > 1 OR metrics.b > 1 AND metrics.c > 1")
    assert shape(expr) == ("OR", "a", ("AND", "b", "c"))
    expr = parse_filter("metrics.a > 1 AND metrics.b > 1 OR metrics.c > 1")
    assert shape(expr) == ("OR", ("AND", "a", "b"), "c")


def test_parentheses_override_precedence() -> None:
    expr = parse_filter("metrics.a > 1 AND (metrics.b > 1 OR metrics.c > 1)")
    assert shape(expr) == ("AND", "a", ("OR", "b", "c"))


def test_tree_holds_the_exact_comparisons() -> None:
    expr = parse_filter("metrics.a > 1 and params.p = 'x'")
    assert expr == And((A, Comparison(Field("param", "p"), "=", "x", 18)))


def test_same_kind_groups_are_flattened() -> None:
    text = "(metrics.a > 1 AND metrics.b > 1) AND (metrics.c > 1 AND metrics.d > 1)"
    assert shape(parse_filter(text)) == ("AND", "a", "b", "c", "d")
    text = "metrics.a > 1 OR (metrics.b > 1 OR (metrics.c > 1)) OR metrics.d > 1"
    assert shape(parse_filter(text)) == ("OR", "a", "b", "c", "d")


def test_redundant_parentheses_around_a_comparison_are_dropped() -> None:
    assert parse_filter("((metrics.a > 1))") == Comparison(metric("a"), ">", 1, 2)


def test_mixed_groups_are_not_flattened() -> None:
    text = "(metrics.a > 1 OR metrics.b > 1) AND (metrics.c > 1 OR metrics.d > 1)"
    assert shape(parse_filter(text)) == ("AND", ("OR", "a", "b"), ("OR", "c", "d"))
    assert isinstance(parse_filter(text), And)
    assert isinstance(parse_filter("metrics.a > 1 OR metrics.b > 1"), Or)


def test_logic_keywords_are_case_insensitive() -> None:
    expr = parse_filter("metrics.a > 1 or metrics.b > 1 And metrics.c > 1")
    assert shape(expr) == ("OR", "a", ("AND", "b", "c"))


def test_comparison_position_is_the_offset_of_its_field() -> None:
    text = "metrics.a > 1 AND (  params.p = 'x' OR tags.`t t` IS NULL)"
    expr = parse_filter(text)
    positions = [text.index("metrics.a"), text.index("params.p"), text.index("tags.")]
    found: list[int] = []

    def walk(node: Expr) -> None:
        if isinstance(node, Comparison):
            found.append(node.position)
        else:
            for item in node.items:
                walk(item)

    assert expr is not None
    walk(expr)
    assert found == positions


def test_compact_spacing_parses() -> None:
    expr = parse_filter("(metrics.a>1)AND(params.p='x')OR tags.t!=\"y\"")
    assert shape(expr) == ("OR", ("AND", "a", "p"), "t")


def test_operators_and_keywords_inside_strings_are_plain_text() -> None:
    assert comparisons(parse_filter("params.p = 'a AND b) OR (c'")) == ["p"]


# --- errors point at the bad token -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("metrics.acc 0.9", 12, "expected a comparison operator after metrics.acc, got '0.9'"),
        ("metrics.acc", 11, "unexpected end of filter: expected a comparison operator"),
        ("metrics.acc >", 13, "unexpected end of filter: expected a number for metrics.acc"),
        ("metrics.acc >   ", 16, "unexpected end of filter: expected a number"),
        ("params.p =", 10, "unexpected end of filter: expected a quoted string for params.p"),
        ("params.p = 'abc", 11, "unterminated string starting here"),
        ("params.`p = 'abc'", 7, "unterminated string starting here"),
        ("metrics.a > 1)", 13, "unexpected token ')'"),
        ("metrics.a > 1 metrics.b > 2", 14, "unexpected token 'metrics.b'"),
        ("(metrics.a > 1", 14, "unexpected end of filter: expected AND, OR or ')'"),
        ("(metrics.a > 1 'x')", 15, "expected AND, OR or ')', got \"'x'\""),
        ("()", 1, "unexpected token ')'"),
        ("metrics.a > 1 AND", 17, "unexpected end of filter: expected a field"),
        ("metrics.a > 1 AND OR metrics.b > 1", 18, "unexpected token 'OR'"),
        ("metrics.a > 1 AND , ", 18, "unexpected token ','"),
        ("> 1", 0, "unexpected token '>'"),
        ("metrics.a @ 1", 10, "unexpected character '@'"),
        ("metrics.a ! 1", 10, "unexpected character '!'"),
        ("params.p NOT 'x'", 13, "expected ILIKE, IN or LIKE after NOT, got \"'x'\""),
        ("params.p IS 'x'", 12, "expected NOT or NULL after IS, got \"'x'\""),
        ("params.p IS NOT", 15, "unexpected end of filter: expected NULL after IS NOT"),
        ("params.p BETWEEN 'a'", 9, "expected a comparison operator after params.p, got 'BETWEEN'"),
        ('params."a b" 1', 13, "expected a comparison operator after params.\"a b\", got '1'"),
    ],
)
def test_syntax_errors_point_at_the_offending_token(text: str, position: int, message: str) -> None:
    err = fails(text)
    assert err.position == position
    assert message in err.message


def test_deep_nesting_is_a_filter_error_not_a_crash() -> None:
    text = "(" * 150 + "metrics.a > 1" + ")" * 150
    err = fails(text)
    assert err.position == 100
    assert "nested deeper than 100" in err.message
    assert parse_filter("(" * 50 + "metrics.a > 1" + ")" * 50) == Comparison(
        metric("a"), ">", 1, 50
    )


def test_huge_integer_literal_does_not_crash() -> None:
    assert one("metrics.a < " + "9" * 5000).value == math.inf


def test_error_draws_a_caret_under_the_bad_token_and_is_an_invalid_argument() -> None:
    text = "metrics.acc > 0.9 AND params.opt LIKE adam"
    err = fails(text)
    assert isinstance(err, InvalidArgument)
    assert isinstance(err, ValueError)
    assert err.details == {"text": text, "position": text.index("adam")}
    assert str(err).endswith(f"\n  {text}\n  {' ' * text.index('adam')}^")


# --- order by --------------------------------------------------------------------------------


@pytest.mark.parametrize("clauses", [None, "", "  ", [], ["", " "]])
def test_no_order_by_gives_an_empty_list(clauses: list[str] | str | None) -> None:
    assert parse_order_by(clauses) == []


def test_order_by_defaults_to_ascending() -> None:
    assert parse_order_by("metrics.acc") == [OrderKey(metric("acc"), descending=False)]


@pytest.mark.parametrize(("word", "descending"), [("ASC", False), ("desc", True), ("Desc", True)])
def test_order_by_direction_is_case_insensitive(word: str, descending: bool) -> None:
    assert parse_order_by([f"params.lr {word}"]) == [OrderKey(Field("param", "lr"), descending)]


def test_order_by_string_may_hold_several_comma_separated_clauses() -> None:
    assert parse_order_by("metrics.acc DESC, start_time,tags.`a, b` asc") == [
        OrderKey(metric("acc"), True),
        OrderKey(attr("start_time"), False),
        OrderKey(Field("tag", "a, b"), False),
    ]


def test_order_by_list_keeps_clause_order_and_resolves_aliases() -> None:
    assert parse_order_by(["created DESC", "run_name", "attributes.id DESC"]) == [
        OrderKey(attr("start_time"), True),
        OrderKey(attr("name"), False),
        OrderKey(attr("run_id"), True),
    ]


@pytest.mark.parametrize(
    ("clause", "position", "message"),
    [
        ("start_time DOWN", 11, "expected ASC or DESC after start_time, got 'DOWN'"),
        ("metrics.acc DESC extra", 17, "expected ',' or the end of the order-by clause"),
        ("metrics.acc,", 12, "unexpected end of order-by clause: expected a field"),
        ("metrics.acc, , start_time", 13, "unexpected token ','"),
        ("acc DESC", 0, "unknown field 'acc'"),
        ("attributes.colour", 0, "unknown attribute 'colour'"),
        ("metrics.acc > 1", 12, "expected ASC or DESC after metrics.acc, got '>'"),
    ],
)
def test_order_by_errors_point_at_the_offending_token(
    clause: str, position: int, message: str
) -> None:
    err = order_fails(clause)
    assert err.position == position
    assert message in err.message
