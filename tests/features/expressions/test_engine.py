"""compute_columns' contract: the history a window run needs (reach), missing fields, errors, shared columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from features.compare import compare_frames, summarize
from features.expressions import UNBOUNDED, ExpressionError, compute_columns, families, parse, reach
from features.expressions.compiler import Plan
from features.qlib_sets import LABEL_COLUMNS as LABEL
from features.qlib_sets import alpha158_columns as alpha158

BOUNDED = [
    ("ma", "Mean($close, 5) / $close"), ("roc", "Ref($close, 7) / $close"), ("label", LABEL[0][1]),
    ("cord", "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), 10)"), ("imax", "IdxMax($high, 6)"),
    ("nest", "Ref(Mean(Delta($close, 2), 4), -1)"), ("slope", "Slope($close, 8)"), ("wma", "WMA($close, 5)"),
    ("cs", "CSRank(Mean($close, 3))"), ("cnt", "Mean($close > Ref($close, 1), 5)"), ("med", "Med($low, 4)"),
]  # fmt: skip
UNBOUNDED_EXPRS = [("exp", "Mean($close, 0)"), ("first", "Ref($close, 0)"), ("d0", "Delta($close, 0)"),
                   ("max0", "Max($high, 0)"), ("ema0", "EMA($close, 0)")]  # fmt: skip


def _cut(bars: pl.DataFrame, cal: pl.Series, lo: int, hi: int) -> pl.DataFrame:
    return bars.filter(pl.col("date").is_between(cal[max(lo, 0)], cal[min(hi, cal.len() - 1)]))


def _assert_same(a: pl.DataFrame, b: pl.DataFrame, rtol: float = 0.0) -> None:
    assert a.select("instrument", "date").equals(b.select("instrument", "date"))
    stats = compare_frames(a, b, a.columns[2:], rtol=rtol, atol=0.0)
    bad = stats.filter(pl.col("agree") < pl.col("cells"))
    assert bad.is_empty(), bad


def test_window_run_with_reach_equals_full_history_run(market):
    bars, cal = market
    start, end = 40, 70
    full = compute_columns(BOUNDED, bars, cal, cal[start], cal[end])
    lookback = max(reach(parse(e))[0] for _, e in BOUNDED)
    horizon = max(reach(parse(e))[1] for _, e in BOUNDED)
    cut = _cut(bars, cal, start - lookback, end + horizon)
    # an instrument's span still starts at its first bar: give the cut frame every instrument's first/last day
    window = compute_columns(BOUNDED, cut, cal, cal[start], cal[end])
    kept = full.join(window.select("instrument", "date"), on=["instrument", "date"], how="semi")
    _assert_same(window, kept, rtol=1e-6)  # per-instrument centring inside some kernels moves the last bits
    assert full.filter(pl.col("date") == cal[start]).height == window.filter(pl.col("date") == cal[start]).height


def test_lazy_bars_over_all_history_read_only_the_reach(market):
    bars, cal = market
    eager = compute_columns(BOUNDED, bars, cal, cal[40], cal[70])
    lazy = compute_columns(BOUNDED, bars.lazy(), cal, cal[40], cal[70])
    assert eager.equals(lazy)
    assert eager["date"].min() == cal[40] and eager["date"].max() == cal[70]


def test_unbounded_expressions_read_all_history(market):
    bars, cal = market
    assert all(reach(parse(e))[0] == UNBOUNDED for _, e in UNBOUNDED_EXPRS)
    full = compute_columns(UNBOUNDED_EXPRS, bars, cal).filter(pl.col("date") >= cal[50])
    window = compute_columns(UNBOUNDED_EXPRS, bars, cal, cal[50])
    _assert_same(window, full)
    first = window.join(bars.group_by("instrument").agg(pl.col("close").sort_by("date").first().alias("c0")),
                        on="instrument")  # fmt: skip
    assert (first["first"] == first["c0"].cast(pl.Float32)).all()  # Ref($close, 0): the first day's value


def test_ema_reach_is_enough_to_float32_precision(market):
    bars, cal = market
    cols = [("ema", "EMA($close, 4)")]
    lookback = reach(parse(cols[0][1]))[0]
    full = compute_columns(cols, bars, cal, cal[60])
    window = compute_columns(cols, _cut(bars, cal, 60 - lookback, 89), cal, cal[60])
    both = full.join(window, on=["instrument", "date"], suffix="_w")
    assert both.height == window.height
    assert summarize(compare_frames(window, full, ["ema"], rtol=1e-6, atol=0.0))["agree_frac"] == 1.0


def test_absent_and_all_null_fields_give_all_null_columns(market):
    bars, cal = market
    cols = [("v", "$vwap / $close"), ("e", "Mean($extra, 3)"), ("c", "$close")]
    out = compute_columns(cols, bars, cal)
    assert out["v"].null_count() == out["e"].null_count() == out.height
    assert out["c"].null_count() < out.height
    with_null = bars.with_columns(pl.lit(None, pl.Float64).alias("vwap"))
    assert compute_columns(cols, with_null, cal)["v"].null_count() == out.height
    with_vwap = bars.with_columns((pl.col("close") * 1.01).alias("vwap"))
    assert compute_columns(cols, with_vwap, cal)["v"].null_count() < out.height


def test_required_fields_must_be_columns(market):
    bars, cal = market
    with pytest.raises(ValueError, match=r"bars is missing column\(s\) \['open'\]"):
        compute_columns([("x", "$close / $open")], bars.drop("open"), cal)
    with pytest.raises(ValueError, match=r"bars is missing column\(s\) \['foo'\]"):
        compute_columns([("x", "$foo")], bars, cal, required=["foo"])


def test_empty_range_gives_an_empty_frame_with_the_schema(market):
    bars, cal = market
    before = pl.Series([cal[0] - (cal[1] - cal[0]) * 10, *cal.to_list()], dtype=pl.Date)
    out = compute_columns([("a", "$close"), ("b", "Mean($close, 2)")], bars, before, before[0], before[0])
    assert out.height == 0
    assert out.schema == pl.Schema({"instrument": pl.Utf8, "date": pl.Date, "a": pl.Float32, "b": pl.Float32})


def test_bad_inputs(market):
    bars, cal = market
    with pytest.raises(ExpressionError, match="column 'a': duplicate column name"):
        compute_columns([("a", "$close"), ("a", "$open")], bars, cal, set_name="s")
    with pytest.raises(ExpressionError, match="feature set 's', column 'b': unknown operator"):
        compute_columns([("a", "$close"), ("b", "Foo($open)")], bars, cal, set_name="s")
    with pytest.raises(ValueError, match="duplicate rows for instrument AAA on 2020-01-01"):
        compute_columns([("a", "$close")], pl.concat([bars, bars.head(1)]), cal)
    with pytest.raises(ValueError, match="outside the calendar, e.g. instrument AAA on 2020-05-05"):
        compute_columns([("a", "$close")], bars, cal[:-5])
    with pytest.raises(ValueError, match=f"start {cal[10]} is after end {cal[5]}"):
        compute_columns([("a", "$close")], bars, cal, cal[10], cal[5])


def test_parsed_trees_and_texts_are_interchangeable(market):
    bars, cal = market
    text = compute_columns([("a", "Std($close, 5) / $close")], bars, cal)
    tree = compute_columns([("a", parse("Std($close, 5) / $close"))], bars, cal)
    assert text.equals(tree)


def test_common_subexpressions_become_one_column_each(fixture_bars, fixture_calendar):
    from features.expressions.grid import build_grid

    roots = [parse(t) for _, t in alpha158()]
    layout = build_grid(fixture_bars, fixture_calendar, {"close"}, set(), None, None, lookback=0, horizon=0,
                          pad=60, keep_idle=False)  # fmt: skip
    plan = Plan(roots, layout)
    names = {str(n) for n in plan.shared}
    assert "Ref($close,1)" in names  # read by ROC, CORD, CNT*, SUM*, WVMA: one column
    assert sum(1 for n in plan.shared if str(n) == "_clean($close)") == 1
    inner = plan.shared - set(plan.roots)
    family = {n for n in inner if n.op in families.OPS}  # shared steps of the window families
    assert 40 < len(inner - family) < 100  # a few dozen shared subtrees (of about 380 distinct nodes)
    # the window sums and moments, Corr's sides, Rank's lag sums, and the extreme levels: 6 per input and
    # direction (close, high, low, IdxMax's and IdxMin's keys), for spans of 1, 2, 4 ... 32 rows
    assert sum(1 for n in family if n.op == "_lvl") == 6 * 6
    assert len(family) < 110
    # 6 for the operators themselves; the Rank family builds each longer window from the shorter ones' columns,
    # and an IdxMax key's extreme climbs its levels one stage each
    assert max(plan.stage.values()) <= 10


def test_values_do_not_depend_on_other_columns_in_the_request(market):
    bars, cal = market
    alone = compute_columns([("m", "Mean($close > Ref($close, 1), 5)")], bars, cal)
    together = compute_columns(BOUNDED + UNBOUNDED_EXPRS + [("m", "Mean($close > Ref($close, 1), 5)")], bars, cal)
    assert np.array_equal(alone["m"].to_numpy(), together["m"].to_numpy(), equal_nan=True)


def test_field_names_cannot_collide_with_the_engine_columns(market):
    bars, cal = market
    odd = bars.with_columns(pl.col("close").alias("_seg"), pl.col("open").alias("__e0"), pl.col("high").alias("_t"))
    out = compute_columns([("a", "$_seg / $__e0"), ("b", "$_t"), ("c", "$close / $open")], odd, cal,
                          required=["_seg"])  # fmt: skip
    assert out["a"].equals(out["c"].alias("a"))
    assert out["b"].drop_nulls().len() > 0


def test_repeated_and_nested_roots(market):
    bars, cal = market
    cols = [("a", "Mean($close, 3)"), ("b", "Mean($close,3)"), ("c", "Mean($close, 3) / $close"), ("d", "$close")]
    out = compute_columns(cols, bars, cal)
    assert out["a"].equals(out["b"].alias("a"))
    assert np.allclose(out["c"].to_numpy(), (out["a"] / out["d"]).to_numpy(), equal_nan=True)


def test_chunks_of_instruments_give_the_same_frame(market, monkeypatch):
    from features.expressions import engine

    bars, cal = market
    cols = [c for c in BOUNDED if c[0] != "cs"] + UNBOUNDED_EXPRS  # a cross-section would need one chunk
    whole = compute_columns(cols, bars, cal)
    sizes = []
    real_concat = pl.concat
    monkeypatch.setattr(engine.pl, "concat", lambda parts: sizes.append(len(parts)) or real_concat(parts))
    monkeypatch.setattr(engine, "CHUNK_CELLS", 1)  # one instrument per chunk
    chunked = compute_columns(cols, bars, cal)
    assert sizes == [5]
    assert whole.equals(chunked)


def test_window_families_equal_each_window_alone(market):
    # features.expressions.families builds the windows of one operator on one input from shared steps (the
    # Rank lag sweep continues from the shorter window's sum); each must equal its window computed alone
    bars, cal = market
    ops = ("Rank", "IdxMax", "IdxMin", "Slope", "Rsquare", "Resi")
    exprs = [(f"{op}{n}", f"{op}($close, {n})") for op in ops for n in (1, 2, 3, 7, 12, 30)]
    exprs += [(f"IMN{n}", f"IdxMin($close + 1 / $volume, {n})") for n in (3, 9)]
    exprs += [(f"CORR{n}", f"Corr($close, Log($volume + 1), {n})") for n in (2, 5, 12)]
    together = compute_columns(exprs, bars, cal)
    assert together["IdxMax30"].null_count() < together.height
    for name, text in exprs:
        alone = compute_columns([(name, text)], bars, cal)
        assert np.array_equal(alone[name].to_numpy(), together[name].to_numpy(), equal_nan=True), name


def test_the_grid_lookups_give_the_same_frame_for_any_row_order():
    # 120 instruments x 30 trading days: more rows than 64 per calendar day (positions from a day table), rows
    # grouped by instrument (run numbers) or shuffled (binary searches of the names): the same frame
    cal = [d for d in (dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(42)) if d.weekday() < 5]
    names = [f"S{i:03d}" for i in range(120)]
    rng = np.random.default_rng(7)
    close = rng.lognormal(size=len(names) * len(cal))
    bars = pl.DataFrame(
        {"instrument": np.repeat(names, len(cal)), "date": cal * len(names), "close": close, "open": close * 1.01}
    )
    columns = [("m", "Mean($close, 5)"), ("r", "Ref($close, 2) / $open"), ("x", "Max($close, 3)")]
    ordered = compute_columns(columns, bars, cal)
    assert ordered.height == bars.height
    assert ordered.equals(compute_columns(columns, bars.sample(fraction=1.0, shuffle=True, seed=3), cal))
    # a row on a Saturday inside an instrument's span: found by the day table (its first and last day are fine)
    saturday = (
        bars.filter(pl.col("instrument") == "S005").head(1).with_columns(pl.lit(dt.date(2021, 1, 9)).alias("date"))
    )
    with pytest.raises(
        ValueError,
        match="1 instrument\\(s\\)/row\\(s\\) on dates outside the calendar, e.g. instrument S005 on 2021-01-09",
    ):
        compute_columns(columns, pl.concat([bars, saturday]), cal)
    with pytest.raises(ValueError, match="outside the calendar, e.g. instrument S000 on 2021-02-12"):
        compute_columns(columns, bars, cal[:-1])
    # ten instruments end early: a window after their last day leaves them out (run offsets for the others)
    early = pl.col("instrument").is_in(names[10:20]) & (pl.col("date") > cal[15])
    cut = bars.filter(~early)
    window = compute_columns(columns, cut, cal, cal[20], cal[-1])
    assert window.height == 110 * (len(cal) - 20)
    assert window.equals(compute_columns(columns, cut.sample(fraction=1.0, shuffle=True, seed=5), cal, cal[20]))
    assert window.equals(compute_columns(columns, cut, cal).filter(pl.col("date") >= cal[20]))
