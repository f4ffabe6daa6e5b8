"""Expression trees to Polars expressions over the padded grid (``features.expressions.grid``).

Representation: every series is Float32/Float64 with Qlib's NaN as NaN (never null), or Boolean (numpy's
comparisons never give NaN), so numpy's element-wise rules carry over; nulls appear only inside rolling
inputs, where Polars skips them as pandas skips NaN.

Per-instrument evaluation: shifts and windows of at most ``grid.pad`` days run over the whole column (the
padding rows keep instruments apart; a window's input is masked to null on them unless it is NaN there
already); unbounded operators (expanding windows, ``Ref(x, 0)``, EMA) and the kernels of
``features.expressions.rolling`` run ``.over("_seg")``; cross-sectional operators run ``.over("_t")``.

Common sub-expressions: every distinct subtree used more than once (and every input of a grouped operator)
becomes one column, computed once, in stages of ``with_columns`` ordered by dependency. Before that,
``features.expressions.families`` rewrites the flat Rank, IdxMax, IdxMin, Slope, Rsquare, Resi, Corr, Max and
Min into internal nodes whose shared steps (lag sweeps, keys, window sums, scaled sides, extreme levels) become
such columns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import polars as pl

from features.expressions import families, numpy_fallback, rolling
from features.expressions.grid import PaddedGrid
from features.expressions.nodes import UNBOUNDED, Call, Field, Literal, Node, int_arg, walk
from features.expressions.operators import OPERATORS, dtype, reach

NAN = float("nan")
_PAD = pl.col("_seg") < 0
# Windowed operators Polars evaluates itself; the others come from features.expressions.rolling.
_NATIVE = {"Mean": "rolling_mean", "Sum": "rolling_sum", "Max": "rolling_max", "Min": "rolling_min"}
_KERNELS = {
    "Skew": "rolling_skew", "Kurt": "rolling_kurt", "Med": "rolling_med", "Mad": "rolling_mad",
    "Rank": "rolling_rank", "IdxMax": "rolling_idxmax", "IdxMin": "rolling_idxmin", "Slope": "rolling_slope",
    "Rsquare": "rolling_rsquare", "Resi": "rolling_resi", "WMA": "rolling_wma", "EMA": "rolling_ema",
    "Quantile": "rolling_quantile", "Corr": "rolling_corr", "Cov": "rolling_cov",
}  # fmt: skip
KERNEL_OPS = frozenset(_KERNELS)
# Kernels built from rolling windows only (no row numbers, cumulative sums or ewm), so that with window n > 0
# they give the per-instrument result over the whole padded column, the padding rows being null; the
# whole-column mean/std they use for conditioning then spans every instrument, so their input is centred per
# instrument first (all of these are shift-invariant). tests/features/expressions/test_operators.py checks
# each against pandas through this path (and would catch a change in rolling.py that breaks the premise).
# Med and Quantile are window-only too but run per instrument: Polars' rolling quantile takes a slower path
# on a column with any null, which the padding guarantees, and most instruments' series have none (2x faster).
FLAT_KERNELS = frozenset({"Skew", "Kurt", "Rank", "Mad", "Slope", "Rsquare", "Resi", "Corr", "Cov"})
# Flat with window n > 0 through ``features.expressions.families`` (which shares work across windows).
FAMILIES = frozenset({"Rank", "IdxMax", "IdxMin", "Slope", "Rsquare", "Resi", "Corr", "Max", "Min"})
_CENTRED = frozenset({"Skew", "Kurt", "Slope", "Rsquare", "Resi", "Corr", "Cov"})


def lower(node: Node) -> Node:
    """Rolling operators' series arguments wrapped in ``_clean`` (float64, NaN/inf/padding as null), a node of
    its own so that Mean, Std, Max... of one series share one cleaned column."""
    if not isinstance(node, Call):
        return node
    args = tuple(lower(a) for a in node.args)
    spec = OPERATORS[node.op]
    if spec.kind in ("rolling", "quantile", "pair_rolling") and node.op != "Count":
        n_series = 2 if spec.kind == "pair_rolling" else 1
        args = tuple(Call("_clean", (a,)) if i < n_series else a for i, a in enumerate(args))
        if node.op in _CENTRED:
            args = tuple(Call("_centre", (a,)) if i < n_series else a for i, a in enumerate(args))
    return Call(node.op, args, node.pos)


def nan_on_padding(node: Node) -> bool:
    """Whether the node is NaN on every padding row (so a window over it needs no mask)."""
    if isinstance(node, Field):
        return True
    if isinstance(node, Literal):
        return False
    op, args = node.op, node.args
    if op in ("Add", "Sub", "Mul", "Div", "Greater", "Less", "Abs", "Log", "Sign"):
        return any(nan_on_padding(a) for a in args)
    if op == "Power":  # NaN ** 0 is 1
        return nan_on_padding(args[0]) and isinstance(args[1], Literal) and args[1].value != 0
    return OPERATORS[op].kind == "cs" if op in OPERATORS else False


def is_grouped(node: Node) -> bool:
    """Operators that need whole per-instrument (or per-date) groups rather than a bounded flat window."""
    if not isinstance(node, Call) or node.op.startswith("_"):
        return False
    spec = OPERATORS[node.op]
    if spec.kind == "cs" or (node.op in KERNEL_OPS and node.op not in FLAT_KERNELS | FAMILIES):
        return True
    if spec.kind in ("rolling", "quantile", "shift", "pair_rolling"):
        return int_arg(node, 2 if spec.kind == "pair_rolling" else 1) == 0  # expanding, or the first value
    return False


def flat_reach(node: Node) -> int:
    """Padding rows needed for the node's own flat shift or window (0 if it has none)."""
    if not isinstance(node, Call) or node.op.startswith("_") or is_grouped(node):
        return 0
    spec = OPERATORS[node.op]
    if spec.kind == "shift":
        return abs(int_arg(node, 1))
    if spec.kind in ("rolling", "quantile"):
        return int_arg(node, 1) - 1
    if spec.kind == "pair_rolling":
        return int_arg(node, 2) - 1
    return 0


def _float(e: pl.Expr, node: Node) -> pl.Expr:
    """numpy treats booleans in arithmetic as 0/1."""
    return e.cast(pl.Float32) if dtype(node) == "bool" else e


def _kind(node: Node) -> str:
    return "f32" if dtype(node) == "bool" else dtype(node)


def _promote_kind(nodes: tuple[Node, ...]) -> str:
    kinds = [_kind(n) for n in nodes if not isinstance(n, Literal)]
    return "f64" if "f64" in kinds else "f32"


def constant_column(value: float, kind: str) -> str:
    """Name of the grid column that holds ``value`` on every row (see ``constant_columns``)."""
    return f"_k{kind}_{float(value)!r}"


def constant_columns(roots: Sequence[Node]) -> dict[str, tuple[float, str]]:
    """The constant columns the roots' divisions by a number need: name -> (value, 'f32' | 'f64')."""
    out = {}
    for root in roots:
        for n in walk(root):
            if isinstance(n, Call) and n.op == "Div" and isinstance(n.args[1], Literal):
                kind = _kind(n.args[0])
                out[constant_column(n.args[1].value, kind)] = (float(n.args[1].value), kind)
    return out


def output_form(e: pl.Expr) -> pl.Expr:
    """A column's published form: Float32, Qlib's NaN as null (booleans as 0/1)."""
    # (``fill_nan`` would evaluate ``e`` twice)
    return e.cast(pl.Float32).replace(float("nan"), None)


def _is_nan(e: pl.Expr, node: Node) -> pl.Expr | None:
    return e.is_nan() if dtype(node) in ("f32", "f64") else None


class Plan:
    """Columns to compute, stage by stage, for a list of root expressions."""

    def __init__(self, roots: Sequence[Node], grid: PaddedGrid) -> None:
        self.grid = grid
        self.roots = families.rewrite([lower(r) for r in roots], FAMILIES)
        # Qlib evaluates a column over the days from its reach before the query's start, so the input of a Std /
        # Var has its first value the input's own reach after that day, and the residue depends on where it
        # starts: per (lowered) Std / Var node, how many days before the start its series begins (the most
        # over the columns using it).
        self.series_reach: dict[Node, int] = {}
        for original in roots:
            back = reach(original)[0]
            for n in walk(original):
                if isinstance(n, Call) and n.op in ("Std", "Var"):
                    inner = reach(n.args[0])[0]
                    days = UNBOUNDED if back >= UNBOUNDED else back - inner
                    key = lower(n)
                    self.series_reach[key] = max(self.series_reach.get(key, 0), days)
        uses: Counter[Node] = Counter()
        order: list[Node] = []
        seen: set[Node] = set()

        def visit(n: Node) -> None:
            if n in seen:
                return
            seen.add(n)
            if isinstance(n, Call):
                for a in n.args:
                    uses[a] += 1
                    visit(a)
            order.append(n)

        for r in self.roots:
            uses[r] += 1
            visit(r)
        root_set = set(self.roots)
        self.shared = {n for n in order if isinstance(n, Call) and (uses[n] > 1 or n in root_set)}
        # Roots nothing else reads are computed by the chunk's last step, each straight into its published form
        # on the output rows (no stage holds them): a chunk's scratch is then its shared intermediates only.
        self.final = {n for n in self.roots if isinstance(n, Call) and uses[n] == 1}
        for n in order:
            if is_grouped(n) or (isinstance(n, Call) and n.op in families.SHARED_ARGS):
                self.shared.update(a for a in n.args if isinstance(a, Call))
        self.names = {n: f"__e{i}" for i, n in enumerate(x for x in order if x in self.shared)}
        self.stage: dict[Node, int] = {}
        for n in order:  # children first, so every dependency has its stage already
            if n in self.shared and n not in self.final:
                self.stage[n] = 1 + max((self.stage[d] for d in self._deps(n)), default=0)

    def _deps(self, node: Node) -> set[Node]:
        """Shared nodes directly below ``node`` (looking through inlined ones)."""
        out: set[Node] = set()
        if isinstance(node, Call):
            for a in node.args:
                if a in self.shared:
                    out.add(a)
                else:
                    out |= self._deps(a)
        return out

    def column(self, node: Node) -> str:
        return f"${node.name}" if isinstance(node, Field) else self.names[node]

    def stages(self) -> list[list[pl.Expr]]:
        n_stages = max(self.stage.values(), default=0)
        out: list[list[pl.Expr]] = [[] for _ in range(n_stages)]
        for node, s in self.stage.items():
            out[s - 1].append(self.build(node, top=True).alias(self.names[node]))
        return out

    # ------------------------------------------------------------------ node -> expression

    def build(self, node: Node, top: bool = False) -> pl.Expr:
        if isinstance(node, Field):
            return pl.col(f"${node.name}")
        if isinstance(node, Literal):
            return pl.lit(node.value)
        if not top and node in self.shared:
            return pl.col(self.names[node])
        args = [self.build(a) for a in node.args]
        op = node.op
        if op == "_clean":
            return self._clean(args[0], node.args[0])
        if op == "_centre":  # per-instrument centring (null rows stay null)
            return args[0] - args[0].mean().over("_seg")
        if op in families.OPS:
            return families.build(node, args)
        spec = OPERATORS[op]
        if spec.kind in ("elem", "pair"):
            return self._arith(op, args, node.args)
        if spec.kind == "compare":
            return self._compare(op, args, node.args)
        if spec.kind == "logic":
            return ~args[0] if op == "Not" else (args[0] & args[1] if op == "And" else args[0] | args[1])
        if op == "If":
            cond, c = args[0], node.args[0]
            if dtype(c) != "bool":  # np.where: non-zero (NaN included) is True
                cond = (cond != 0) | cond.is_nan()
            return pl.when(cond).then(args[1]).otherwise(args[2])
        if spec.kind == "shift":
            return self._shift(op, args[0], node.args[0], int_arg(node, 1))
        if spec.kind == "cs":
            return self._cross_section(op, args[0], node.args[0])
        return self._window(node, args)

    def _arith(self, op: str, args: list[pl.Expr], nodes: tuple[Node, ...]) -> pl.Expr:
        a = _float(args[0], nodes[0])
        if op == "Abs":
            return a.abs()
        if op == "Log":
            return numpy_fallback.log(a, "f32" if dtype(nodes[0]) == "bool" else dtype(nodes[0]))
        if op == "Sign":
            return a.cast(pl.Float32).sign()
        b = _float(args[1], nodes[1])
        if op == "Add":
            return a + b
        if op == "Sub":
            return a - b
        if op == "Mul":
            return a * b
        if op == "Div":
            if isinstance(nodes[1], Literal):
                # Polars divides by a scalar as a product with its reciprocal (not IEEE division): divide by a
                # column holding the number instead (numpy's weak scalar: in the numerator's dtype)
                return a / pl.col(constant_column(nodes[1].value, _kind(nodes[0])))
            return a / b
        if op == "Power":
            base = float(nodes[0].value) if isinstance(nodes[0], Literal) else a
            exponent = float(nodes[1].value) if isinstance(nodes[1], Literal) else b
            return numpy_fallback.power(base, exponent, _promote_kind(nodes))
        # np.maximum / np.minimum propagate NaN
        nan = [m for m in (_is_nan(a, nodes[0]), _is_nan(b, nodes[1])) if m is not None]
        pick = pl.when(a >= b if op == "Greater" else a <= b).then(a).otherwise(b)
        if not nan:
            return pick
        either = nan[0] if len(nan) == 1 else nan[0] | nan[1]
        return pl.when(either).then(pl.lit(NAN)).otherwise(pick)

    def _compare(self, op: str, args: list[pl.Expr], nodes: tuple[Node, ...]) -> pl.Expr:
        # Polars orders NaN above every number and equal to itself; numpy compares NaN False (!= True).
        a, b = args
        plain = {"Gt": a > b, "Ge": a >= b, "Lt": a < b, "Le": a <= b, "Eq": a == b, "Ne": a != b}[op]
        nan = [m for m in (_is_nan(a, nodes[0]), _is_nan(b, nodes[1])) if m is not None]
        if not nan:
            return plain
        either = nan[0] if len(nan) == 1 else nan[0] | nan[1]
        return plain | either if op == "Ne" else plain & ~either

    def _masked(self, e: pl.Expr, node: Node, fill: pl.Expr) -> pl.Expr:
        return e if nan_on_padding(node) else pl.when(_PAD).then(fill).otherwise(e)

    def _clean(self, e: pl.Expr, node: Node) -> pl.Expr:
        e = e.cast(pl.Float64)
        if dtype(node) == "bool":
            return e if nan_on_padding(node) else pl.when(~_PAD).then(e)
        ok = e.is_finite() if nan_on_padding(node) else e.is_finite() & ~_PAD
        return pl.when(ok).then(e)

    def _shift(self, op: str, e: pl.Expr, node: Node, n: int) -> pl.Expr:
        e = _float(e, node)
        # n == 0: Qlib takes the first value of the series (here: of the instrument's first day)
        past = e.first().over("_seg") if n == 0 else self._masked(e, node, pl.lit(NAN)).shift(n, fill_value=NAN)
        return past if op == "Ref" else e - past

    def _window(self, node: Call, args: list[pl.Expr]) -> pl.Expr:
        op = node.op
        if op in KERNEL_OPS:
            fn = getattr(rolling, _KERNELS[op])
            if op == "Quantile":
                out = fn(args[0], int_arg(node, 1), float(node.args[2].value))
            elif op in ("Corr", "Cov"):
                out = fn(args[0], args[1], int_arg(node, 2))
            elif op == "EMA":
                span = node.args[1]
                out = fn(args[0], int(span.value) if span.is_int else float(span.value))
            else:
                out = fn(args[0], int_arg(node, 1))
            return (out.over("_seg") if is_grouped(node) else out).fill_null(NAN)
        n = int_arg(node, 1)
        size = self.grid.longest if n == 0 else n
        if op == "Count":  # pandas counts everything but NaN (inf included) and gives 0, not NaN
            x, src = args[0], node.args[0]
            nan = _is_nan(x, src)
            missing = _PAD if nan is None else nan | _PAD
            out = pl.when(missing).then(0.0).otherwise(1.0).rolling_sum(size, min_samples=1)
        elif op in _NATIVE:
            out = getattr(args[0], _NATIVE[op])(size, min_samples=1).fill_null(NAN)
        else:  # Std, Var: pandas' own kernel, for Qlib's residue on constant windows (see numpy_fallback)
            # flat even when expanding: the kernel's windows stop at each instrument's first row
            start_t, back = self.grid.start_t, self.series_reach.get(node, UNBOUNDED)
            first_t = None if start_t is None or back >= UNBOUNDED else start_t - back
            return numpy_fallback.rolling_var(args[0], n, std=op == "Std", first_t=first_t).fill_null(NAN)
        return out.over("_seg") if n == 0 else out

    def _cross_section(self, op: str, e: pl.Expr, node: Node) -> pl.Expr:
        e = _float(e, node).cast(pl.Float64)
        valid = ~_PAD
        if "_member" in self.grid.frame.columns:
            valid = valid & pl.col("_member")
        if op == "CSRank":  # average rank of the non-NaN values (inf ranks as a value), as a fraction
            v = pl.when(valid & ~e.is_nan()).then(e)
            out = v.rank("average").over("_t") / v.count().over("_t")
        else:  # mean and std over the finite values; other cells give NaN
            v = pl.when(valid & e.is_finite()).then(e)
            centred = v - v.mean().over("_t")
            out = centred / v.std(ddof=1).over("_t") if op == "CSZScore" else centred
        return out.fill_null(NAN)
