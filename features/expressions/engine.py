"""``compute_columns``: named expressions evaluated on bars over a trading calendar."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import polars as pl

from features.dates import DateLike
from features.expressions.compiler import Plan, constant_columns, flat_reach, output_form
from features.expressions.grid import CalendarLike, build_grid
from features.expressions.nodes import Call, ExpressionError, Field, Node, fields, walk
from features.expressions.operators import cross_sectional, reach
from features.expressions.parser import parse

# Fields a column cannot do without unless told otherwise (today's Alpha158/Alpha360/label contract):
# reading one that bars lacks is an error; any other absent (or all-null) field makes its columns all-null.
DEFAULT_REQUIRED = ("open", "high", "low", "close", "volume")
# Cells of intermediate columns of the chunk of instruments in flight (about 0.5 GB of float64).
CHUNK_CELLS = 1 << 26


def _empty(columns: Sequence[str]) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"instrument": pl.Utf8(), "date": pl.Date()}
    schema.update({c: pl.Float32() for c in columns})
    return pl.DataFrame(schema=schema)


def _parse_columns(columns: Sequence[tuple[str, str | Node]], set_name: str) -> list[tuple[str, Node]]:
    out: list[tuple[str, Node]] = []
    seen: set[str] = set()
    for item in columns:
        try:
            name, expr = item
        except (TypeError, ValueError):
            reason = f"columns must be (name, expression) pairs, got {item!r}"
            raise ExpressionError(reason, set_name=set_name) from None
        if not isinstance(name, str) or not name or name in ("instrument", "date"):
            raise ExpressionError(f"invalid column name {name!r}", set_name=set_name)
        if name in seen:
            raise ExpressionError("duplicate column name", set_name=set_name, column=name)
        seen.add(name)
        node = parse(expr, set_name=set_name, column=name) if isinstance(expr, str) else expr
        if not isinstance(node, Field | Call):
            raise ExpressionError(f"not an expression tree: {node!r}", set_name=set_name, column=name)
        out.append((name, node))
    return out


def compute_columns(
    columns: Sequence[tuple[str, str | Node]],
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    members: pl.DataFrame | None = None,
    set_name: str = "",
    required: Collection[str] | None = None,
) -> pl.DataFrame:
    """instrument, date, then each named expression as Float32, in order.

    Rows: every calendar day from each instrument's first to its last bar in ``bars`` (Qlib's span rule: days
    without a bar included), limited to [start, end], sorted by (instrument, date). Qlib's NaN is null; +-inf
    is kept. Values at ``start`` equal a full-history run when ``bars`` holds the ``reach`` of every expression
    before ``start`` (and after ``end``); ``bars`` may be a LazyFrame over all history, of which only that range
    is read (all of it when a reach is ``UNBOUNDED``).

    ``members`` (instrument, date) limits the cross-sectional operators' universe per date; rows outside it get
    null from them. ``required``: the fields that must be columns of ``bars`` (default: those of
    ``DEFAULT_REQUIRED`` that the expressions read); any other field that is absent or entirely null in the
    rows read gives all-null results for the columns that read it.
    """
    parsed = _parse_columns(columns, set_name)
    names = [n for n, _ in parsed]
    roots = [node for _, node in parsed]
    used = frozenset().union(*(fields(r) for r in roots)) if roots else frozenset()
    need = frozenset(used & set(DEFAULT_REQUIRED) if required is None else required)
    lookback = max((reach(r)[0] for r in roots), default=0)
    horizon = max((reach(r)[1] for r in roots), default=0)
    pad = max((flat_reach(n) for r in roots for n in walk(r)), default=0)
    cross = any(cross_sectional(r) for r in roots)
    grid = build_grid(
        bars, calendar, used, need, start, end, lookback=lookback, horizon=horizon, pad=max(pad, 1),
        keep_idle=cross, members=members if cross else None,
    )  # fmt: skip
    if not grid.frame["_out"].any():
        return _empty(names)

    live = [(n, r) for n, r in parsed if fields(r) <= grid.present]
    plan = Plan([r for _, r in live], grid)
    # Instruments are independent unless a cross-sectional operator looks across them: compute groups of
    # whole instruments one after the other, so that the intermediate columns of a chunk fit in memory.
    if cross:
        slices = [(0, grid.frame.height)]
    else:
        slices = grid.chunks(max(4 * grid.pad, CHUNK_CELLS // max(1, len(plan.shared))))
    query = _query(plan, live, list(grid.frame.columns))
    # One chunk at a time: each stage's expressions keep Polars' threads busy (two chunks in flight, as
    # before, were no faster on 2 cores and held twice the scratch, which the allocator then keeps resident).
    parts = [query(_with_constants(grid.frame.slice(*piece), plan)) for piece in slices]
    result = pl.concat(parts) if len(parts) > 1 else parts[0]
    instruments, calendar_days = grid.instruments, grid.calendar
    del grid, plan, query  # the padded frame goes before the output's own columns are built
    instrument = instruments.gather(result["_seg"]).alias("instrument")
    date = calendar_days.gather(result["_t"]).alias("date")
    nulls = pl.repeat(None, result.height, dtype=pl.Float32, eager=True)
    by_name = {n: result[n] for n, _ in live}
    series = [instrument, date] + [by_name[n] if n in by_name else nulls.alias(n) for n in names]
    return pl.DataFrame(series)


def _with_constants(frame: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """The frame with numpy-backed constant columns for divisions by numbers (a literal column would be a
    scalar again; see ``compiler.Plan._arith``)."""
    extra = []
    for name, (value, kind) in constant_columns(plan.roots).items():
        np_type = np.float32 if kind == "f32" else np.float64
        extra.append(pl.Series(name, np.full(frame.height, value, dtype=np_type)))
    return frame.with_columns(extra) if extra else frame


def _query(plan: Plan, live: list[tuple[str, Node]], meta: list[str]):
    """A function from one chunk of the grid frame to its output rows (_seg, _t, columns)."""
    stages = plan.stages()
    last_use = _last_use(plan, len(stages))
    born = {plan.names[n]: st for n, st in plan.stage.items()}  # fields are there from the start
    meta = [c for c in meta if c.startswith("_")] + list(constant_columns(plan.roots))
    out_rows = pl.col("_out")
    outputs = [pl.col("_seg").filter(out_rows), pl.col("_t").filter(out_rows)]
    for (name, _), root in zip(live, plan.roots, strict=True):
        e = plan.build(root, top=True) if root in plan.final else pl.col(plan.column(root))
        outputs.append(output_form(e).filter(out_rows).alias(name))
    # Sub-expressions are shared by construction; Polars' own elimination still pays inside the kernels.
    # The in-memory engine runs wide with_columns far faster than the streaming default.
    opts = pl.QueryOptFlags(comm_subexpr_elim=True, cluster_with_columns=False)

    def run(frame: pl.DataFrame) -> pl.DataFrame:
        lazy = frame.lazy()
        for s, exprs in enumerate(stages, start=1):
            lazy = lazy.with_columns(exprs)
            keep = [c for c, last in last_use.items() if last > s and born.get(c, 0) <= s]
            lazy = lazy.select(*meta, *keep)
        return lazy.select(outputs).collect(engine="in-memory", optimizations=opts)

    return run


def _last_use(plan: Plan, n_stages: int) -> dict[str, int]:
    """For every column a stage reads (fields and shared results), the last stage that reads it; the columns
    the chunk's last step reads (roots held as columns, and what the roots it computes itself read) live till
    the end (n_stages + 1)."""
    last: dict[str, int] = {}
    for node, s in plan.stage.items():
        for dep in _reads(plan, node, top=True):
            col = plan.column(dep)
            last[col] = max(last.get(col, 0), s)
    for root in plan.roots:
        for dep in _reads(plan, root, top=True) if root in plan.final else [root]:
            last[plan.column(dep)] = n_stages + 1
    return last


def _reads(plan: Plan, node: Node, top: bool = False) -> set[Node]:
    """Fields and shared nodes whose columns the expression of ``node`` reads."""
    if isinstance(node, Field):
        return {node}
    if not isinstance(node, Call):
        return set()
    if not top and node in plan.shared:
        return {node}
    out: set[Node] = set()
    for a in node.args:
        out |= _reads(plan, a)
    return out
