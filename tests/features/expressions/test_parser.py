"""Parsing Qlib's expression text: the tree, precedence, folding, errors with set / column / position, reach."""

from __future__ import annotations

import pytest

from features.expressions import UNBOUNDED, Call, ExpressionError, Field, Literal, fields, parse, reach
from features.qlib_sets import LABEL_COLUMNS as LABEL
from features.qlib_sets import alpha158_columns as alpha158
from features.qlib_sets import alpha360_columns as alpha360


def test_tree_of_a_kbar_expression():
    node = parse("($close-$open)/$open")
    assert node == Call("Div", (Call("Sub", (Field("close"), Field("open"))), Field("open")))
    assert str(node) == "Div(Sub($close,$open),$open)"


def test_precedence_is_pythons():
    assert parse("$a + $b * $c") == parse("Add($a, Mul($b, $c))")
    assert parse("$a - $b - $c") == parse("Sub(Sub($a, $b), $c)")
    assert parse("$a / $b / $c") == parse("Div(Div($a, $b), $c)")
    assert parse("-$a ** 2") == parse("Sub(0, Power($a, 2))")
    assert parse("($a > 1) & ($b < 2) | ($c == 3)") == parse("Or(And(Gt($a, 1), Lt($b, 2)), Eq($c, 3))")
    # & binds tighter than >, as in Python: ($a > 1 & $b) is $a > (1 & $b), and 1 & $b is not boolean
    with pytest.raises(ExpressionError, match="And needs boolean arguments"):
        parse("$a > 1 & $b > 2")


def test_numbers_fold_and_keep_int_or_float():
    assert parse("Mean($close, 2 + 3)") == parse("Mean($close, 5)")
    assert parse("$x * (1 / 4)") == Call("Mul", (Field("x"), Literal(0.25, False)))
    assert parse("Ref($x, -2)").args[1] == Literal(-2, True)
    assert parse("$x + 1e-12").args[1] == Literal(1e-12, False)
    assert Literal(5, True) != Literal(5.0, False)


def test_nodes_are_hashable_and_equal_by_structure():
    a, b = parse("Mean($close, 5) / $close"), parse("Mean( $close,5 )/$close")
    assert a == b and hash(a) == hash(b)
    assert len({a, b, parse("Mean($close, 10) / $close")}) == 2
    for _, text in alpha158()[:40]:
        node = parse(text)
        assert parse(str(node)) == node  # str() is parseable back


def test_fields_and_unicode_names():
    assert fields(parse("Corr($close, Log($volume+1), 5) + $vwap")) == {"close", "volume", "vwap"}
    assert fields(parse("$收盘 + 1")) == {"收盘"}


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        ("Mean($close, 5) + Foo($open)", "unknown operator 'Foo'", 18),
        ("Mean($close)", "Mean takes 2 argument(s)", 0),
        ("$a + Corr($a, $b)", "Corr takes 3 argument(s)", 5),
        ("Mean($close, 5.0)", "must be an integer window", 13),
        ("Ref($close, 1.5)", "must be an integer window", 12),
        ("Mean($close, -1)", "window >= 0", 13),
        ("Mean($close, $open)", "must be a number", 13),
        ("Mean(5, 3)", "must be an expression that reads a field", 5),
        ("Quantile($close, 5, 1.5)", "between 0 and 1", 20),
        ("Skew($close, 2)", "window of 0 or >= 3", 13),
        ("Corr($a, $b, 0)", "no expanding form", 13),
        ("EMA($a, 1.5)", "smoothing factor", 8),
        ("close + 1", "unknown name 'close'", 0),
        ("$close + ", "expected a field", 9),
        ("$close ? 1", "unexpected character '?'", 7),
        ("$ + 1", "'$' must be followed by a field name", 0),
        ("$$roe", "point-in-time", 0),
        ("Mean($close, 5", "expected ')'", 14),
        ("$a > $b > $c", "chained comparisons", 8),
        ("Not($close)", "boolean", 4),
        ("1 + 2", "constant", 0),
        ("", "empty expression", 0),
        ("$a * (1 / 0)", "Div of two numbers fails", 8),
        ("Greater(1, 2)", "at least one series", 0),
    ],
)
def test_errors_name_set_column_position(text, reason, position):
    with pytest.raises(ExpressionError) as info:
        parse(text, set_name="mine", column="X1")
    err = info.value
    assert reason in err.reason
    assert err.position == position
    assert str(err).startswith("feature set 'mine', column 'X1': ")
    assert f"at position {position} in {text!r}" in str(err)


def test_error_message_format_of_the_interface():
    with pytest.raises(ExpressionError) as info:
        parse("Mean($close, 5) + Foo($open)", set_name="mine", column="X1")
    assert str(info.value) == (
        "feature set 'mine', column 'X1': unknown operator 'Foo' at position 18 in 'Mean($close, 5) + Foo($open)'"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$close", (0, 0)),
        ("Mean($close, 5)", (4, 0)),
        ("Ref($close, 5)", (5, 0)),
        ("Ref($close, -2)/Ref($close, -1) - 1", (0, 2)),
        ("Mean(Ref($close, 3), 5)", (7, 0)),
        ("Ref(Mean($close, 5), -3)", (4, 3)),
        ("Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), 60)", (60, 0)),
        ("Delta($close, 3)", (3, 0)),  # Qlib says 2, but the value 3 days back is read
        ("Delta($close, -2)", (0, 2)),
        ("Quantile($close, 10, 0.5)", (9, 0)),
        ("Mean($close, 0)", (UNBOUNDED, 0)),
        ("Ref($close, 0)", (UNBOUNDED, 0)),
        ("Cov($a, $b, 0) + Ref($a, -1)", (UNBOUNDED, 1)),
        ("CSRank(Mean($close, 5))", (4, 0)),
        ("EMA($close, 0)", (UNBOUNDED, 0)),
    ],
)
def test_reach(text, expected):
    assert reach(parse(text)) == expected


def test_ema_reach_covers_its_memory():
    lookback, _ = reach(parse("EMA($close, 10)"))
    alpha = 2 / 11
    assert (1 - alpha) ** lookback <= 1e-9 < (1 - alpha) ** (lookback - 1)
    assert reach(parse("EMA($close, 0.5)"))[0] == 30


def test_reach_of_the_qlib_sets():
    assert max(reach(parse(t))[0] for _, t in alpha158()) == 60
    assert max(reach(parse(t))[0] for _, t in alpha360()) == 59
    assert reach(parse(LABEL[0][1])) == (0, 2)
