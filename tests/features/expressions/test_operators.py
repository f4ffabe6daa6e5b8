"""Every operator through ``compute_columns`` against the pandas reference of Qlib's semantics (pandas_ref)."""

from __future__ import annotations

import numpy as np
import polars as pl

from features.expressions import compute_columns, parse
from tests.features.expressions.conftest import FIELDS
from tests.features.expressions.pandas_ref import panel, reference

ELEMENTWISE = [
    "Abs($close - $open)", "Sign($close - Ref($close, 1))", "Log($volume)", "Power($close, 2)", "$close ** 0.5",
    "2 ** ($close / 100)", "Greater($open, $close)", "Less($open, $close)", "Greater($close, 20)",
    "Gt($close, $open)", "$close >= $open", "$close < Ref($close, 1)", "$close <= 20", "$close == Ref($close, 1)",
    "$close != Ref($close, 1)", "And($close > $open, $volume > 5e4)", "Or($close > $open, $volume > 5e4)",
    "($close > $open) | ($volume > 5e4)", "Not($close > $open)", "If($close > $open, $high, $low)",
    "If($close - $open, 1, 0)", "If(Ref($close, 1) > 10, $close, 0.5)", "-$close + 2 * $open / 3",
    "$volume / ($volume - $volume)", "1 / $volume", "($close - $open) / ($high - $low + 1e-12)",
    "($close > $open) + ($close > Ref($close, 1))",
]  # fmt: skip
SIMPLE_WINDOWS = [
    "Ref($close, 1)", "Ref($close, -2)", "Ref($close, 0)", "Ref(Ref($close, 1), 0)", "Delta($close, 3)",
    "Delta($close, -1)", "Delta($close, 0)", "Mean(1 / $volume, 5)", "Count(1 / $volume, 5)", "Count($close, 4)",
    "Mean($close > Ref($close, 1), 5)", "Sum(Greater($close - Ref($close, 1), 0), 4)", "Mean(Ref($close, 2), 3)",
    "Ref(Mean($close, 3), -1)", "Std(Abs($close / Ref($close, 1) - 1) * $volume, 5)", "Std($volume, 5)",
    "Var($close, 6)", "Max($high, 3) - Min($low, 3)", "Sum(If($close > $open, 1, 0), 3)", "Count($close > 0, 3)",
]  # fmt: skip
SIMPLE_WINDOWS += [f"{op}($close, {n})" for op in ("Mean", "Sum", "Std", "Var", "Max", "Min", "Count")
                   for n in (1, 3, 0)]  # fmt: skip
KERNELS = [
    "Skew($close, 5)", "Kurt($close, 5)", "Med($close, 5)", "Mad($close, 5)", "Quantile($close, 5, 0.8)",
    "Rank($close, 5)", "IdxMax($high, 5)", "IdxMin($low, 5)", "Slope($close, 5)", "Rsquare($close, 5)",
    "Resi($close, 5)", "WMA($close, 5)", "EMA($close, 5)", "EMA($close, 0.3)", "Corr($close, $volume, 5)",
    "Cov($close, $volume, 5)", "Corr($close / Ref($close, 1), Log($volume / Ref($volume, 1) + 1), 6)",
    "Skew($close, 0)", "Med($close, 0)", "Rank($close, 0)", "IdxMax($close, 0)", "Slope($close, 0)",
    "WMA($close, 0)", "EMA($close, 0)", "Cov($close, $volume, 0)", "Quantile($close, 0, 0.2)", "Mad($close, 0)",
    "Rsquare(Mean($close, 3), 4)", "Slope($close / Ref($close, 1), 10)", "Mad($close, 12)", "Resi($low, 12)",
    "Kurt($volume, 0)", "Cov($high, $low, 8)",
]  # fmt: skip
CROSS_SECTION = [
    "CSRank($close)", "CSZScore($close)", "CSDemean($close)", "CSRank(Corr($close, $volume, 5))",
    "Mean(CSRank($close), 3)", "CSZScore(1 / $volume)", "CSRank($close > $open)",
]  # fmt: skip


def _check(exprs: list[str], market, rtol: float = 2e-5, atol: float = 1e-6) -> None:
    bars, cal = market
    columns = [(f"c{i}", e) for i, e in enumerate(exprs)]
    ours = compute_columns(columns, bars, cal)
    want = reference([(n, parse(e)) for n, e in columns], panel(bars, cal, FIELDS))
    assert ours.select("instrument", "date").equals(want.select("instrument", "date"))
    bad = []
    for name, expr in columns:
        a = ours[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        b = want[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        with np.errstate(invalid="ignore"):
            same = (np.isnan(a) & np.isnan(b)) | (a == b) | (np.abs(a - b) <= atol + rtol * np.abs(b))
        if not same.all():
            k = int(np.flatnonzero(~same)[0])
            bad.append(f"{expr}: {int((~same).sum())} cells differ, e.g. row {k}: {a[k]} vs {b[k]}")
    assert not bad, "\n".join(bad)


def test_elementwise_operators_follow_numpy(market):
    _check(ELEMENTWISE, market, rtol=0, atol=0)  # float32 arithmetic: bit for bit


def test_shifts_and_simple_windows_follow_pandas(market):
    _check(SIMPLE_WINDOWS, market)


def test_kernel_operators_follow_qlib(market):
    _check(KERNELS, market, rtol=1e-4)


def test_cross_sectional_operators(market):
    _check(CROSS_SECTION, market)


def test_output_contract(market):
    bars, cal = market
    out = compute_columns([("B", "$close > $open"), ("X", "Mean($close, 3)"), ("C", "$close")], bars, cal)
    assert out.columns == ["instrument", "date", "B", "X", "C"]
    assert out.dtypes == [pl.Utf8, pl.Date, pl.Float32, pl.Float32, pl.Float32]
    assert out.select("instrument", "date").is_unique().all()
    assert out.sort("instrument", "date").equals(out)
    # a day without a bar inside a span is a row (Qlib's span rule), with null fields
    ref = bars.select("instrument", "date", pl.col("close").cast(pl.Float32).fill_nan(None))
    joined = out.join(ref, on=["instrument", "date"], how="left")
    assert joined["close"].null_count() > 0
    assert joined.filter(pl.col("close").is_null())["C"].null_count() == joined["close"].null_count()
    assert joined.filter(pl.col("close").is_not_null())["C"].equals(
        joined.filter(pl.col("close").is_not_null())["close"].alias("C")
    )


def test_nan_comparisons_are_false_like_numpy(market):
    bars, cal = market
    out = compute_columns([("gt", "$close > 0"), ("ne", "$close != 0"), ("eq", "$close == $close")], bars, cal)
    missing = compute_columns([("c", "$close")], bars, cal)["c"].is_null()
    assert (out.filter(missing)["gt"] == 0).all()
    assert (out.filter(missing)["ne"] == 1).all()
    assert (out.filter(missing)["eq"] == 0).all()
    assert (out.filter(~missing)["eq"] == 1).all()


def test_inf_is_kept_and_float32_addition_matters_only_at_zero(market):
    bars, cal = market
    out = compute_columns([("inv", "1 / $volume"), ("eps", "$volume / ($volume + 1e-12)")], bars, cal)
    assert np.isinf(out["inv"].to_numpy()).any()
    eps = out["eps"].drop_nulls()
    assert set(np.unique(eps.to_numpy())) == {0.0, 1.0}  # float32: v + 1e-12 == v unless v == 0


def test_members_restrict_cross_sections(market):
    bars, cal = market
    members = bars.filter(pl.col("instrument") != "BBB").select("instrument", "date")
    out = compute_columns([("r", "CSRank($close)"), ("d", "CSDemean($close)")], bars, cal, members=members)
    outside = out.filter(pl.col("instrument") == "BBB")
    assert outside["r"].null_count() == outside["d"].null_count() == outside.height
    mine = compute_columns([("r", "CSRank($close)")], bars.filter(pl.col("instrument") != "BBB"), cal)
    kept = out.filter(pl.col("instrument") != "BBB").select("instrument", "date", "r")
    joined = kept.join(mine, on=["instrument", "date"], suffix="_m")
    assert joined["r"].equals(joined["r_m"].alias("r"))
