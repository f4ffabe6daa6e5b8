"""risk_analysis and the signal analysis on series small enough to check by hand."""

from __future__ import annotations

import datetime as dt
import math
import statistics

import numpy as np
import polars as pl
import pytest

from evaluation.risk import risk_analysis
from evaluation.signal import daily_ic, daily_long_short, signal_analysis, signal_metrics

NAN = float("nan")
D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)


def test_risk_analysis_sum_mode() -> None:
    r = [0.01, -0.02, 0.03]
    out = risk_analysis(pl.Series(r))
    mean, std = statistics.mean(r), statistics.stdev(r)
    assert out["mean"] == pytest.approx(mean)
    assert out["std"] == pytest.approx(std)
    assert out["annualized_return"] == pytest.approx(mean * 238)
    assert out["information_ratio"] == pytest.approx(mean / std * math.sqrt(238))
    assert out["max_drawdown"] == pytest.approx(-0.02)  # cumsum 0.01, -0.01, 0.02


def test_risk_analysis_product_mode_and_other_frequencies() -> None:
    r = np.array([0.01, -0.02, 0.03])
    out = risk_analysis(r, mode="product")
    growth = 1.01 * 0.98 * 1.03
    assert out["mean"] == pytest.approx(growth ** (1 / 3) - 1)
    assert out["std"] == pytest.approx(statistics.stdev(np.log(1 + r)))
    assert out["annualized_return"] == pytest.approx(growth ** (238 / 3) - 1)
    assert out["max_drawdown"] == pytest.approx(0.98 - 1)
    assert out["information_ratio"] == pytest.approx(out["mean"] / out["std"] * math.sqrt(238))
    assert risk_analysis(r, freq="week")["annualized_return"] == pytest.approx(r.mean() * 50)
    assert risk_analysis(r, freq="month")["annualized_return"] == pytest.approx(r.mean() * 12)


def test_risk_analysis_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="returns is empty"):
        risk_analysis([])
    with pytest.raises(ValueError, match="1 missing or infinite values \\(first at position 1\\)"):
        risk_analysis([0.1, NAN])
    with pytest.raises(ValueError, match="unknown freq 'year'"):
        risk_analysis([0.1], freq="year")
    with pytest.raises(ValueError, match="unknown mode 'log'; valid values: 'sum', 'product'"):
        risk_analysis([0.1], mode="log")  # type: ignore[arg-type]
    assert math.isnan(risk_analysis([0.1])["std"])


def frame(rows: list[tuple[str, dt.date, float]], name: str) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["instrument", "date", name], orient="row")


def test_daily_ic_pearson_and_average_rank_spearman() -> None:
    scores = frame(
        [("A", D1, 1.0), ("B", D1, 2.0), ("C", D1, 3.0), ("D", D1, 4.0), ("E", D1, 5.0),
         ("A", D2, 1.0), ("B", D2, 2.0), ("C", D3, 1.0)],
        "score",
    )  # fmt: skip
    labels = frame(
        [("A", D1, 0.1), ("B", D1, 0.2), ("C", D1, 0.2), ("D", D1, 0.4), ("E", D1, NAN),
         ("A", D2, 0.3), ("B", D2, None), ("C", D3, 0.5)],
        "LABEL0",
    )  # fmt: skip
    daily = daily_ic(scores, labels)
    assert daily["date"].to_list() == [D1, D2, D3]
    # D1: E has no label; ties 0.2/0.2 get average rank 2.5
    assert daily["ic"][0] == pytest.approx(statistics.correlation([1, 2, 3, 4], [0.1, 0.2, 0.2, 0.4]))
    assert daily["rank_ic"][0] == pytest.approx(statistics.correlation([1, 2, 3, 4], [1, 2.5, 2.5, 4]))
    assert math.isnan(daily["ic"][1]) and math.isnan(daily["rank_ic"][2])  # one pair only

    metrics = signal_metrics(pl.DataFrame({"date": [D1, D2, D3], "ic": [0.1, NAN, 0.3], "rank_ic": [0.2, 0.0, 0.1]}))
    assert metrics["ic"] == pytest.approx(0.2)
    assert metrics["icir"] == pytest.approx(0.2 / statistics.stdev([0.1, 0.3]))
    assert metrics["rank_ic"] == pytest.approx(0.1)
    assert metrics["rank_icir"] == pytest.approx(0.1 / 0.1)


def test_constant_scores_give_nan_ic() -> None:
    scores = frame([("A", D1, 1.0), ("B", D1, 1.0), ("C", D1, 1.0)], "score")
    labels = frame([("A", D1, 0.1), ("B", D1, 0.2), ("C", D1, 0.3)], "label")
    daily = daily_ic(scores, labels)
    assert math.isnan(daily["ic"][0]) and math.isnan(daily["rank_ic"][0])


def test_long_short_groups() -> None:
    names = [f"S{k}" for k in range(10)]
    score = [9.0, 8.0, 7.0, 7.0, 5.0, 4.0, 3.0, 2.0, 2.0, NAN]
    label = [0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01, 0.5]
    scores = frame(list(zip(names, [D1] * 10, score, strict=True)), "score")
    labels = frame(list(zip(names, [D1] * 10, label, strict=True)), "label")
    out = daily_long_short(scores, labels, quantile=0.2)
    # N = int(10 * 0.2) = 2: long S0, S1; short S7, S8 (the tie at 2.0 keeps both, NaN score excluded)
    assert out["long_short"][0] == pytest.approx(((0.09 + 0.08) / 2 - (0.02 + 0.01) / 2) / 2)
    assert out["long_avg"][0] == pytest.approx(sum(label) / 10)
    out = daily_long_short(scores, labels, quantile=0.3)
    # N = 3: the tie 7.0/7.0 at the cut goes to S2 (first name); short S6, S7, S8
    assert out["long_short"][0] == pytest.approx(((0.09 + 0.08 + 0.07) / 3 - (0.03 + 0.02 + 0.01) / 3) / 2)


def test_long_short_fills_with_unscored_rows_when_scores_run_out() -> None:
    scores = frame([("A", D1, NAN), ("B", D1, NAN), ("C", D1, NAN), ("D", D1, NAN), ("E", D1, NAN)], "score")
    labels = frame([(n, D1, float(k)) for k, n in enumerate("ABCDE")], "label")
    out = daily_long_short(scores, labels, quantile=0.4)
    # pandas' nlargest and nsmallest both take the first 2 rows: the two groups are equal
    assert out["long_short"][0] == 0.0


def test_signal_analysis_reports_annualised_long_short() -> None:
    rng = np.random.default_rng(0)
    rows = [(f"S{k}", d, float(rng.normal())) for k in range(20) for d in (D1, D2, D3)]
    scores = frame(rows, "score")
    labels = frame([(i, d, s * 0.01 + float(rng.normal()) * 0.01) for i, d, s in rows], "label")
    daily, metrics = signal_analysis(scores, labels)
    assert daily.columns == ["date", "ic", "rank_ic", "long_short", "long_avg"]
    ls = daily["long_short"].to_numpy()
    assert metrics["long_short_ann_return"] == pytest.approx(ls.mean() * 252)
    assert metrics["long_short_ann_sharpe"] == pytest.approx(ls.mean() / ls.std(ddof=1) * math.sqrt(252))
    assert metrics["ic"] > 0.3  # labels were built from the scores


def test_signal_input_errors() -> None:
    scores = frame([("A", D1, 1.0), ("A", D1, 2.0)], "score")
    labels = frame([("A", D1, 0.1)], "label")
    with pytest.raises(ValueError, match="scores has 2 rows with a duplicate .* A on 2024-01-02"):
        daily_ic(scores, labels)
    with pytest.raises(ValueError, match=r"labels has 2 value columns \['label', 'other'\]; pass label_col"):
        daily_ic(scores.unique(["instrument", "date"]), labels.with_columns(pl.lit(1.0).alias("other")))
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 0.5\], got 0.7"):
        daily_long_short(scores, labels, quantile=0.7)
