"""Window families: one operator on one input over several windows (Alpha158's Rank, IdxMax, IdxMin, Slope,
Rsquare, Resi and Corr over 5, 10, 20, 30, 60 days), rewritten into engine-internal nodes that share the work
the windows (and the operators) have in common.

Polars' own ``rolling_rank`` costs 5-25x a comparison sweep, and the per-instrument IdxMax kernel sorts each
instrument to rank it; neither shares work between the windows of a family. Here (flat padded layout only,
window ``n > 0``; expanding windows keep their per-instrument kernels):

- ``Rank(x, n)``: pandas' average rank of the last value is ``less + (equal + 1) / 2`` over the window's
  values, i.e. ``(count + 1 + S) / 2`` with ``S`` the sum over the window's other values of
  ``sign(x_t - x_{t-k})`` (a null counts 0). ``_signsum(x, n, prev)`` is that sum, its shorter window ``prev``
  plus the terms of the lags in between, so a family sweeps the lags of its longest window once. Every term is
  a small integer, so the result is exactly ``rolling_rank / count``.
- ``IdxMax(x, n)`` / ``IdxMin``: one rolling max per window of one exact integer key shared by the family,
  ``tier * B + (B - 1 - row)``: the tier is the value's dense rank over the whole column (descending for
  IdxMin; the order within a window is all that matters, so no per-instrument grouping), above every rank
  for a missing value (``np.argmax`` on a raw window returns its first NaN) and 0 on padding rows. The largest
  key of a window is thus its oldest missing value if any, else its oldest best value, and its row gives the
  position counted from the window's oldest day inside the instrument.
- ``Slope``/``Rsquare``/``Resi``: the window sums and moments of ``rolling.regression_sums`` /
  ``regression_moments`` as nodes of their own, so the three operators on one window share them.
- ``Corr``: the scaled sides of ``rolling.pair_scaled`` (and their sum and difference) are
  window-independent, so every window of the family shares them.
- ``Max(x, n)`` / ``Min`` and every other window maximum or minimum above (IdxMax's key, the constant-window
  test of Resi): a table of the extreme over the last 1, 2, 4, ... 2**k rows, each level one comparison of the
  level below with itself shifted, and a window of n as the extreme of two overlapping power-of-two spans. Exact
  (an extreme is one of the values), and the levels serve every window of the input: Polars' rolling max costs
  12-14 ns a row per window, a level or a window here about 3.

The Plan shares every internal node used twice as a column of its own, so each step is computed once.
"""

from __future__ import annotations

from collections import defaultdict

import polars as pl

from features.expressions import rolling
from features.expressions.nodes import Call, Literal, Node, int_arg

_PAD = pl.col("_seg") < 0
_F64 = pl.Float64
# Above any chunk's row count and number of distinct values; tier * _BIG stays below 2**62.
_BIG = 1 << 31
OPS = frozenset(
    {
        "_signsum", "_rank", "_key", "_idx", "_rsum", "_rmom", "_slope", "_rsq", "_resi", "_pair", "_corr", "_lvl",
        "_ext",
    }
)  # fmt: skip
# Internal nodes whose expression reads a Call argument more than once: those arguments must be columns.
SHARED_ARGS = frozenset({"_lvl", "_ext"})
EXTREMES = ("Max", "Min")
REGRESSION = ("Slope", "Rsquare", "Resi")
_COUNT, _SXX, _SXY, _SYY, _NEWEST, _DEV = range(6)


def _lit(n: int) -> Literal:
    return Literal(float(n), True)


def rewrite(roots: list[Node], flat: frozenset[str]) -> list[Node]:
    """The roots with every flat ``Rank``/``IdxMax``/``IdxMin`` (window > 0) replaced by internal nodes that
    share the steps of their family (same operator, same input)."""
    windows: dict[tuple[str, Node | tuple[Node, Node]], set[int]] = defaultdict(set)

    def collect(n: Node) -> None:
        if isinstance(n, Call):
            for a in n.args:
                collect(a)
            if n.op in ("Rank", "IdxMax", "IdxMin", *REGRESSION, *EXTREMES) and n.op in flat and int_arg(n, 1) > 0:
                windows[(n.op, n.args[0])].add(int_arg(n, 1))
            if n.op == "Corr" and n.op in flat and int_arg(n, 2) > 0:
                windows[(n.op, n.args[:2])].add(int_arg(n, 2))

    for r in roots:
        collect(r)
    repl: dict[tuple[str, Node | tuple[Node, Node], int], Node] = {}
    for (op, x), ws in windows.items():
        if op == "Corr":
            a, b = (Call("_pair", (*x, _lit(i))) for i in (0, 1))
            sides = (a, b, Call("_pair", (*x, _lit(2), a, b)), Call("_pair", (*x, _lit(3), a, b)))
            for w in ws:
                repl[(op, x, w)] = Call("_corr", (*x, _lit(w), *sides))
            continue
        if op in REGRESSION:
            for w in ws:
                repl[(op, x, w)] = _regression(op, x, w)
            continue
        if op in EXTREMES:
            for w in ws:
                repl[(op, x, w)] = extreme(x, 1 if op == "Max" else -1, w, nan=True)
            continue
        if op == "Rank":
            prev: Node = _lit(0)
            for w in sorted(ws):
                prev = Call("_signsum", (x, _lit(w), prev))
                repl[(op, x, w)] = Call("_rank", (x, _lit(w), prev))
            continue
        key = Call("_key", (x, _lit(1 if op == "IdxMax" else -1)))
        for w in ws:
            repl[(op, x, w)] = Call("_idx", (x, _lit(w), key, extreme(key, 1, w, nan=False)))

    def apply(n: Node) -> Node:
        if not isinstance(n, Call):
            return n
        args = tuple(apply(a) for a in n.args)
        if n.op in ("Rank", "IdxMax", "IdxMin", *REGRESSION, *EXTREMES) and (n.op, args[0], int_arg(n, 1)) in repl:
            return repl[(n.op, args[0], int_arg(n, 1))]
        if n.op == "Corr" and (n.op, args[:2], int_arg(n, 2)) in repl:
            return repl[(n.op, args[:2], int_arg(n, 2))]
        return Call(n.op, args, n.pos)

    return [apply(r) for r in roots] if windows else roots


def _regression(op: str, x: Node, n: int) -> Node:
    """Slope/Rsquare/Resi of x over n from shared nodes: the window sums, then the moments built on them (the
    same nodes for every operator of the three on that window, so each is one column)."""
    w = _lit(n)
    sums = tuple(Call("_rsum", (x, w, _lit(i))) for i in range(4))

    def moment(i: int) -> Node:
        if i == _COUNT:
            return sums[0]
        # today's deviation is exactly 0 on a window whose values are all equal (its largest equals its least)
        flat = (extreme(x, 1, n, nan=False), extreme(x, -1, n, nan=False)) if i == _DEV else ()
        return Call("_rmom", (x, w, _lit(i), *sums, *flat))

    if op == "Slope":
        return Call("_slope", (moment(_SXX), moment(_SXY)))
    if op == "Rsquare":
        return Call("_rsq", (x, w, moment(_SXX), moment(_SXY), moment(_SYY)))
    return Call("_resi", (x, moment(_COUNT), moment(_SXX), moment(_SXY), moment(_NEWEST), moment(_DEV)))


def extreme(x: Node, sign: int, n: int, nan: bool) -> Node:
    """The largest (sign 1) or least (-1) value of x over each window of n rows, from the power-of-two levels of
    x; empty windows give NaN with ``nan``, else the fill value (-inf / +inf; x a ``_key``: 0)."""
    k = n.bit_length() - 1  # the longest power-of-two span within the window
    return Call("_ext", (x, _lit(sign), _lit(n), _level(x, sign, k), _lit(int(nan))))


def _level(x: Node, sign: int, k: int) -> Node:
    """The extreme over the last 2**k rows; level 0 is x with missing values as the fill value."""
    if k == 0:
        return Call("_lvl", (x, _lit(sign), _lit(0)))
    return Call("_lvl", (x, _lit(sign), _lit(k), _level(x, sign, k - 1)))


def _fill(x: Node, sign: int) -> float | int:
    if isinstance(x, Call) and x.op == "_key":
        return 0  # keys are positive integers, never missing
    return float("-inf") if sign > 0 else float("inf")


def _pick(a: pl.Expr, b: pl.Expr, sign: int) -> pl.Expr:
    return pl.when(a >= b if sign > 0 else a <= b).then(a).otherwise(b)


def _row() -> pl.Expr:
    """Row number within the evaluated chunk (the flat layout: instruments one after the other)."""
    return pl.int_range(pl.len(), dtype=pl.Int64)


def _count(x: pl.Expr, n: int) -> pl.Expr:
    return x.is_not_null().cast(_F64).rolling_sum(n, min_samples=1)


def build(node: Call, args: list[pl.Expr]) -> pl.Expr:
    """The expression of an internal node, given its arguments' expressions."""
    op = node.op
    if op == "_signsum":
        x, lo, hi = args[0], int_arg(node.args[2], 1) if isinstance(node.args[2], Call) else 1, int_arg(node, 1)
        terms = [(x - x.shift(k)).sign().fill_null(0.0) for k in range(max(lo, 1), hi)]
        acc = args[2] if isinstance(node.args[2], Call) else pl.lit(0.0)
        # a left fold of plain additions: sum_horizontal's null handling costs twice as much
        return pl.fold(acc, lambda a, b: a + b, terms) if terms else acc
    if op == "_rank":
        x, n = args[0], int_arg(node, 1)
        count = _count(x, n)
        return pl.when(x.is_not_null()).then((count + 1.0 + args[2]) * 0.5 / count).fill_null(float("nan"))
    if op == "_key":
        # dense rank over the whole column: only the order within each window matters
        tier = args[0].rank("dense", descending=int_arg(node, 1) < 0).cast(pl.Int64)
        tier = pl.when(_PAD).then(0).otherwise(tier.fill_null(_BIG - 1))
        return tier * _BIG + (_BIG - 1 - _row())
    if op == "_lvl":
        sign, k, fill = int_arg(node, 1), int_arg(node, 2), _fill(node.args[0], int_arg(node, 1))
        if k == 0:
            return args[0] if isinstance(fill, int) else args[0].fill_null(fill)
        return _pick(args[3], args[3].shift(1 << (k - 1), fill_value=fill), sign)
    if op == "_ext":
        sign, n, fill = int_arg(node, 1), int_arg(node, 2), _fill(node.args[0], int_arg(node, 1))
        span = 1 << int_arg(node.args[3], 2)
        out = args[3] if span == n else _pick(args[3], args[3].shift(n - span, fill_value=fill), sign)
        return pl.when(out.is_infinite()).then(float("nan")).otherwise(out) if int_arg(node, 4) else out
    if op == "_idx":
        x, n = args[0], int_arg(node, 1)
        best_row = _BIG - 1 - args[3] % _BIG
        inside = (~_PAD).cast(pl.Int64).rolling_sum(n, min_samples=1)  # the window's days within the instrument
        pos = (best_row - _row() + inside).cast(_F64)
        return pl.when(_count(x, n) > 0).then(pos).fill_null(float("nan"))
    if op == "_rsum":
        return rolling.regression_sums(args[0], int_arg(node, 1))[int_arg(node, 2)]
    if op == "_rmom":
        sums = (args[3], args[4], args[5], args[6])
        flat = (args[7], args[8]) if len(args) > 7 else None
        return rolling.regression_moments(args[0], int_arg(node, 1), sums, flat)[int_arg(node, 2)]
    if op == "_slope":
        return rolling.slope_from(args[0], args[1]).fill_null(float("nan"))
    if op == "_rsq":
        return rolling.rsquare_from(args[0], int_arg(node, 1), *args[2:]).fill_null(float("nan"))
    if op == "_resi":
        return rolling.resi_from(*args).fill_null(float("nan"))
    if op == "_pair":
        part = int_arg(node, 2)
        if part < 2:
            return rolling.pair_scaled(args[0], args[1])[part]
        return args[3] + args[4] if part == 2 else args[3] - args[4]
    if op == "_corr":
        x, y, n = args[0], args[1], int_arg(node, 2)
        return rolling.corr_from(x, y, n, *rolling.pair_moments(*args[3:], n)).fill_null(float("nan"))
    raise AssertionError(op)
