"""Qlib's operator table: names, argument order and kinds, the dtype each operator yields, and its reach.

Argument kinds: ``series`` (an expression that reads a field), ``value`` (a series or a number), ``window``
(an integer >= 0, 0 meaning expanding), ``shift`` (any integer), ``span`` (EMA: an integer >= 0 or a float in
(0, 1), the smoothing factor), ``q`` (a number in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from features.expressions.nodes import UNBOUNDED, Call, ExpressionError, Field, Literal, Node, walk


@dataclass(frozen=True)
class OpSpec:
    name: str
    kind: str  # elem, pair, compare, logic, if, rolling, shift, quantile, pair_rolling, cs
    args: tuple[str, ...]
    min_window: int = 1  # smallest window other than 0 (expanding)
    expanding: bool = True  # whether N=0 (expanding) is allowed


def _specs() -> dict[str, OpSpec]:
    table: list[OpSpec] = []
    table += [OpSpec(n, "elem", ("series",)) for n in ("Abs", "Sign", "Log")]
    table += [OpSpec("Not", "logic", ("series",))]
    table += [OpSpec(n, "pair", ("value", "value")) for n in ("Add", "Sub", "Mul", "Div", "Power", "Greater", "Less")]
    table += [OpSpec(n, "compare", ("value", "value")) for n in ("Gt", "Ge", "Lt", "Le", "Eq", "Ne")]
    table += [OpSpec(n, "logic", ("value", "value")) for n in ("And", "Or")]
    table += [OpSpec("If", "if", ("series", "value", "value"))]
    rolling = ("Mean", "Sum", "Std", "Var", "Max", "Min", "Med", "Mad", "Rank", "Count", "IdxMax", "IdxMin",
               "Slope", "Rsquare", "Resi", "WMA")  # fmt: skip
    table += [OpSpec(n, "rolling", ("series", "window")) for n in rolling]
    table += [OpSpec("Skew", "rolling", ("series", "window"), min_window=3)]
    table += [OpSpec("Kurt", "rolling", ("series", "window"), min_window=4)]
    table += [OpSpec("EMA", "rolling", ("series", "span"))]
    table += [OpSpec(n, "shift", ("series", "shift")) for n in ("Ref", "Delta")]
    table += [OpSpec("Quantile", "quantile", ("series", "window", "q"))]
    # Qlib's Corr masks with rolling(0).std(), which pandas refuses: no expanding Corr there either.
    table += [OpSpec("Corr", "pair_rolling", ("series", "series", "window"), expanding=False)]
    table += [OpSpec("Cov", "pair_rolling", ("series", "series", "window"))]
    table += [OpSpec(n, "cs", ("series",)) for n in ("CSRank", "CSZScore", "CSDemean")]
    return {s.name: s for s in table}


OPERATORS: dict[str, OpSpec] = _specs()

# Python-level folding of number-with-number arithmetic (Qlib evaluates expression text as Python).
_FOLD: dict[str, Callable[[float, float], float]] = {
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Div": lambda a, b: a / b,
    "Power": lambda a, b: a**b,
}


def _fail(reason: str, node: Node, text: str) -> ExpressionError:
    return ExpressionError(reason, text=text, position=node.pos)


def make_call(name: str, args: list[Node], pos: int, text: str) -> Node:
    """A validated ``Call`` (or the folded number, for arithmetic on two numbers)."""
    spec = OPERATORS.get(name)
    if spec is None:
        raise ExpressionError(f"unknown operator {name!r}", text=text, position=pos)
    if len(args) != len(spec.args):
        want = ", ".join(spec.args)
        raise ExpressionError(
            f"{name} takes {len(spec.args)} argument(s) ({want}), got {len(args)}", text=text, position=pos
        )
    if all(isinstance(a, Literal) for a in args) and name in _FOLD:
        a, b = args
        try:
            value = _FOLD[name](a.value, b.value)
        except (ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(f"{name} of two numbers fails: {exc}", text=text, position=pos) from None
        return Literal(value, a.is_int and b.is_int and name != "Div", pos)
    for i, (kind, arg) in enumerate(zip(spec.args, args, strict=True)):
        _check_arg(spec, i, kind, arg, text)
    if spec.kind in ("pair", "compare", "logic") and not any(not isinstance(a, Literal) for a in args):
        raise ExpressionError(f"{name} needs at least one series argument", text=text, position=pos)
    node = Call(name, tuple(args), pos)
    if spec.kind == "logic":
        for arg in args:
            if dtype(arg) != "bool":
                raise _fail(f"{name} needs boolean arguments (comparisons), got {arg}", arg, text)
    return node


def _check_arg(spec: OpSpec, i: int, kind: str, arg: Node, text: str) -> None:
    label = f"argument {i + 1} of {spec.name}"
    if kind == "series":
        if isinstance(arg, Literal):
            raise _fail(f"{label} must be an expression that reads a field, got the number {arg}", arg, text)
        return
    if kind == "value":
        return
    if not isinstance(arg, Literal):
        raise _fail(f"{label} must be a number, got the expression {arg}", arg, text)
    v = arg.value
    if kind == "q":
        if not 0.0 <= v <= 1.0:
            raise _fail(f"{label} (quantile) must be between 0 and 1, got {arg}", arg, text)
        return
    if kind == "span" and not arg.is_int:
        if not 0.0 < v < 1.0:
            raise _fail(f"{label} must be an integer span >= 0 or a smoothing factor in (0, 1), got {arg}", arg, text)
        return
    if not arg.is_int:
        raise _fail(f"{label} must be an integer window, got {arg}", arg, text)
    if kind == "shift":
        return
    if v < 0:
        raise _fail(f"{label} must be a window >= 0, got {arg}", arg, text)
    if v == 0 and not spec.expanding:
        raise _fail(f"{label}: {spec.name} has no expanding form (window 0)", arg, text)
    if 0 < v < spec.min_window:
        raise _fail(f"{label}: {spec.name} needs a window of 0 or >= {spec.min_window}, got {arg}", arg, text)


def _promote(kinds: list[str]) -> str:
    """numpy's result dtype for float32/float64/bool series and Python numbers (which adapt)."""
    series = [k for k in kinds if k != "num"]
    if not series:
        return "f64"
    return "f64" if "f64" in series else "f32"


def dtype(node: Node) -> str:
    """'bool', 'f32', 'f64' (series) or 'num' (a Python number)."""
    if isinstance(node, Field):
        return "f32"
    if isinstance(node, Literal):
        return "num"
    if node.op.startswith("_"):
        return "f64"
    spec = OPERATORS[node.op]
    if spec.kind in ("compare", "logic"):
        return "bool"
    if node.op == "Sign":  # Qlib casts to float32 before np.sign
        return "f32"
    if spec.kind in ("elem", "pair", "shift"):
        return _promote([dtype(a) for a in node.args])
    if spec.kind == "if":
        return _promote([dtype(a) for a in node.args[1:]])
    return "f64"  # rolling and cross-sectional results


def _window_reach(n: int, inner: int) -> int:
    return UNBOUNDED if n == 0 or inner >= UNBOUNDED else inner + n - 1


def _ema_reach(node: Call) -> int:
    """EMA has infinite memory: the days after which the dropped history weighs below 1e-9 of the total, so a
    run with that much history equals a full-history run to float32 precision (Qlib uses N - 1)."""
    arg = node.args[1]
    assert isinstance(arg, Literal)
    if arg.is_int and arg.value == 0:
        return UNBOUNDED
    alpha = arg.value if not arg.is_int else 2.0 / (arg.value + 1.0)
    if alpha >= 1.0:
        return 0
    return int(math.ceil(math.log(1e-9) / math.log(1.0 - alpha)))


def cross_sectional(node: Node) -> bool:
    """Whether the expression uses a cross-sectional operator (per day over the universe's members)."""
    return any(isinstance(n, Call) and OPERATORS[n.op].kind == "cs" for n in walk(node))


def reach(node: Node) -> tuple[int, int]:
    """(lookback, horizon) in trading days, as Qlib's ``get_extended_window_size`` but exact (see the package
    docstring for where it differs); lookback is ``UNBOUNDED`` when all history is read."""
    if not isinstance(node, Call):
        return 0, 0
    parts = [reach(a) for a in node.args]
    left = max(p[0] for p in parts)
    right = max(p[1] for p in parts)
    spec = OPERATORS.get(node.op)
    kind = spec.kind if spec else "elem"
    if kind in ("rolling", "quantile", "pair_rolling"):
        n_at = 2 if kind == "pair_rolling" else 1
        if node.op == "EMA":
            left = UNBOUNDED if left >= UNBOUNDED else left + _ema_reach(node)
        else:
            arg = node.args[n_at]
            assert isinstance(arg, Literal)
            left = _window_reach(int(arg.value), left)
    elif kind == "shift":
        arg = node.args[1]
        assert isinstance(arg, Literal)
        n = int(arg.value)
        if n == 0:  # Ref(x, 0) and Delta(x, 0) read the series' first value
            left = UNBOUNDED
        elif n > 0:
            left = min(UNBOUNDED, left + n)
        else:
            right = right - n
    return min(left, UNBOUNDED), right
