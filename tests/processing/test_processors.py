"""Processor semantics on hand-made panels, state round trips and argument errors."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from processing.panel import Panel, panel_from_frames
from processing.processors import (
    PROCESSORS,
    CSRankNorm,
    CSZScoreNorm,
    DropnaLabel,
    DropnaProcessor,
    Fillna,
    FilterCol,
    MinMaxNorm,
    ProcessInf,
    RobustZScoreNorm,
    ZScoreNorm,
    make_processor,
    processor_from_state,
)

D1, D2, D3 = dt.date(2022, 1, 3), dt.date(2022, 1, 4), dt.date(2022, 1, 5)
INF = np.inf


def make_panel(rows: list[tuple[str, dt.date, list[float], float]], names: list[str] | None = None) -> Panel:
    """rows: (instrument, date, feature values, label)."""
    k = len(rows[0][2])
    names = names or [f"F{j}" for j in range(k)]
    feats = pl.DataFrame(
        {
            "instrument": [r[0] for r in rows],
            "date": [r[1] for r in rows],
            **{n: pl.Series([r[2][j] for r in rows], dtype=pl.Float32) for j, n in enumerate(names)},
        }
    )
    labels = pl.DataFrame(
        {
            "instrument": [r[0] for r in rows],
            "date": [r[1] for r in rows],
            "LABEL0": pl.Series([r[3] for r in rows], dtype=pl.Float32),
        }
    )
    return panel_from_frames(feats, labels)


def col(panel: Panel, j: int = 0) -> list[float]:
    return panel.features[:, j].astype(np.float64).tolist()


def test_panel_sorted_by_date_then_instrument_and_nulls_become_nan() -> None:
    feats = pl.DataFrame(
        {
            "instrument": ["B", "A", "B", "A"],
            "date": [D2, D2, D1, D1],
            "F0": pl.Series([1.0, None, 3.0, 4.0], dtype=pl.Float32),
        }
    )
    labels = pl.DataFrame({"instrument": ["A"], "date": [D1], "LABEL0": [0.5]})
    p = panel_from_frames(feats, labels)
    assert p.instruments().tolist() == ["A", "B", "A", "B"]
    assert p.dates.tolist() == [D1, D1, D2, D2]
    assert np.isnan(p.features[2, 0]) and p.features[3, 0] == 1.0
    assert p.labels[:, 0].tolist()[0] == 0.5 and np.isnan(p.labels[1:, 0]).all()


def test_panel_rejects_duplicates_and_missing_columns() -> None:
    feats = pl.DataFrame({"instrument": ["A", "A"], "date": [D1, D1], "F0": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"features has 2 duplicated \(instrument, date\) rows, e.g. A 2022-01-03"):
        panel_from_frames(feats, None)
    with pytest.raises(ValueError, match=r"features frame lacks column\(s\) F9"):
        panel_from_frames(feats.unique(["instrument", "date"]), None, feature_columns=["F0", "F9"])


def test_panel_membership_keeps_member_days_only() -> None:
    feats = pl.DataFrame({"instrument": ["A", "A", "A", "B"], "date": [D1, D2, D3, D2], "F0": [1.0, 2.0, 3.0, 4.0]})
    membership = pl.DataFrame(
        {"instrument": ["A", "A", "B"], "start_date": [D1, D3, D1], "end_date": [D1, D3, D1]}  # A: two ranges
    )
    p = panel_from_frames(feats, None, membership=membership)
    assert list(zip(p.instruments().tolist(), p.dates.tolist(), strict=True)) == [("A", D1), ("A", D3)]


def test_dropna_groups_and_infer_flag() -> None:
    p = make_panel([("A", D1, [1.0, np.nan], 0.1), ("B", D1, [1.0, 2.0], np.nan), ("C", D1, [INF, 2.0], 0.2)])
    assert DropnaProcessor("feature").transform(p).instruments().tolist() == ["B", "C"]  # inf is not NaN
    assert DropnaLabel().transform(p).instruments().tolist() == ["A", "C"]
    assert DropnaProcessor().transform(p).instruments().tolist() == ["C"]
    assert not DropnaLabel().is_for_infer() and DropnaProcessor("label").is_for_infer()


def test_process_inf_uses_day_mean_of_finite_values() -> None:
    p = make_panel(
        [
            ("A", D1, [INF, INF], 0.0),
            ("B", D1, [1.0, -INF], 0.0),
            ("C", D1, [3.0, np.nan], INF),
            ("A", D2, [-INF, 5.0], 1.0),
            ("B", D2, [7.0, 6.0], 3.0),
        ]
    )
    out = ProcessInf().transform(p)
    assert col(out, 0) == [2.0, 1.0, 3.0, 7.0, 7.0]
    assert np.isnan(out.features[:2, 1]).all() and np.isnan(out.features[2, 1])  # no finite value that day
    assert out.labels[2, 0] == 0.0  # the label is processed too
    assert np.isinf(p.features[0, 0])  # the input is untouched


def test_fillna_group_and_value() -> None:
    p = make_panel([("A", D1, [np.nan, INF], np.nan)])
    out = Fillna("feature", fill_value=-1).transform(p)
    assert out.features[0].tolist() == [-1.0, INF] and np.isnan(out.labels[0, 0])
    assert Fillna().transform(p).labels[0, 0] == 0.0


def test_zscore_norm_uses_fit_window_and_leaves_constant_columns() -> None:
    rows = [("A", D1, [1.0, 0.3], 0), ("B", D1, [3.0, 0.3], 0), ("A", D2, [100.0, 0.3], 0), ("B", D2, [np.nan, 7.0], 0)]
    p = make_panel(rows)
    proc = ZScoreNorm(D1, D1, fields_group="feature")
    proc.fit(p)
    out = proc.transform(p)
    assert col(out, 0)[:3] == [-1.0, 1.0, 98.0]  # mean 2, std 1 (ddof 0) from D1 only
    assert np.allclose(col(out, 1), [0.3, 0.3, 0.3, 7.0])  # std 0 in the window: unchanged
    assert np.isnan(out.features[3, 0])


def test_robust_zscore_norm_median_mad_and_clip() -> None:
    rows = [(f"I{i}", D1, [float(v), 1.0], 0) for i, v in enumerate([1, 2, 3, 4, 100])]
    p = make_panel(rows)
    proc = RobustZScoreNorm(D1, D1, fields_group="feature", clip_outlier=True)
    proc.fit(p)
    out = proc.transform(p)
    scale = (np.float32(1) + np.float32(1e-12)) * np.float32(1.4826)  # median 3, MAD 1
    assert np.allclose(col(out, 0), [-2 / scale, -1 / scale, 0, 1 / scale, 3.0])
    assert col(out, 1) == [0.0] * 5  # constant column: (x - med) / tiny = 0
    noclip = RobustZScoreNorm(D1, D1, fields_group="feature", clip_outlier=False)
    noclip.fit(p)
    assert noclip.transform(p).features[4, 0] == pytest.approx(97 / scale, rel=1e-6)


def test_minmax_norm() -> None:
    p = make_panel([("A", D1, [2.0, 5.0], 0), ("B", D1, [4.0, 5.0], 0), ("A", D2, [6.0, 1.0], 0)])
    proc = MinMaxNorm(D1, D1, fields_group="feature")
    proc.fit(p)
    out = proc.transform(p)
    assert col(out, 0) == [0.0, 1.0, 2.0] and col(out, 1) == [5.0, 5.0, 1.0]


def test_cs_zscore_and_robust_per_day() -> None:
    p = make_panel(
        [
            ("A", D1, [1.0], 1.0),
            ("B", D1, [2.0], 2.0),
            ("C", D1, [3.0], np.nan),
            ("A", D2, [5.0], 4.0),
            ("B", D2, [9.0], np.nan),
        ]
    )
    out = CSZScoreNorm("feature").transform(p)
    assert np.allclose(col(out)[:3], [-1.0, 0.0, 1.0])
    assert np.allclose(col(out)[3:], [-np.sqrt(0.5), np.sqrt(0.5)])
    lab = CSZScoreNorm("label").transform(p).labels[:, 0]
    assert np.allclose(lab[:2], [-np.sqrt(0.5), np.sqrt(0.5)]) and np.isnan(lab[2:]).all()  # one label on D2: NaN
    rob = CSZScoreNorm("feature", method="robust").transform(p)
    assert np.allclose(col(rob)[:3], [-1 / 1.4826, 0.0, 1 / 1.4826])
    assert np.allclose(col(rob)[3:], [-1 / 1.4826, 1 / 1.4826])


def test_cs_rank_norm_ties_average_and_nan_kept() -> None:
    p = make_panel([("A", D1, [5.0], 0), ("B", D1, [1.0], 0), ("C", D1, [5.0], 0), ("D", D1, [np.nan], 0)])
    out = CSRankNorm("feature").transform(p)
    pct = [2.5 / 3, 1 / 3, 2.5 / 3]
    assert np.allclose(col(out)[:3], [(x - 0.5) * 3.46 for x in pct]) and np.isnan(out.features[3, 0])


def test_filter_col_keeps_original_order_and_labels() -> None:
    p = make_panel([("A", D1, [1.0, 2.0, 3.0], 0.5)], names=["X", "Y", "Z"])
    out = FilterCol("feature", ["Z", "X"]).transform(p)
    assert out.feature_names == ["X", "Z"] and out.features[0].tolist() == [1.0, 3.0]
    assert out.label_names == ["LABEL0"]
    with pytest.raises(ValueError, match=r"\['W'\]"):
        FilterCol("feature", ["W"]).transform(p)


@pytest.mark.parametrize(
    "proc",
    [
        ZScoreNorm("2022-01-03", "2022-01-04"),
        RobustZScoreNorm("2022-01-03", "2022-01-04", fields_group="feature", clip_outlier=False),
        MinMaxNorm("2022-01-03", "2022-01-05", fields_group="label"),
        CSZScoreNorm("label", method="robust"),
        FilterCol("feature", ["F1"]),
        Fillna("feature", 2.5),
        ProcessInf(),
        DropnaLabel(),
    ],
)
def test_state_round_trip_is_exact_json(proc) -> None:
    rng = np.random.default_rng(1)
    rows = [(f"I{i}", d, rng.normal(size=3).tolist(), float(rng.normal())) for d in (D1, D2, D3) for i in range(7)]
    rows[0][2][1] = np.nan
    p = make_panel(rows)
    proc.fit(p)
    text = json.dumps(proc.to_state(), allow_nan=False)
    again = processor_from_state(json.loads(text))
    a, b = proc.transform(p), again.transform(p)
    assert a.feature_names == b.feature_names
    assert np.array_equal(a.features, b.features, equal_nan=True)
    assert np.array_equal(a.labels, b.labels, equal_nan=True)


def test_non_finite_statistics_survive_the_state() -> None:
    p = make_panel([("A", D1, [np.nan, INF], 0), ("B", D1, [np.nan, 1.0], 0)])
    proc = MinMaxNorm(D1, D1)
    proc.fit(p)
    state = json.loads(json.dumps(proc.to_state(), allow_nan=False))
    again = processor_from_state(state)
    assert np.isnan(again.stats["feature"]["min"][0]) and np.isinf(again.stats["feature"]["max"][1])


def test_errors_name_the_bad_input() -> None:
    with pytest.raises(ValueError, match="valid processors.*CSRankNorm"):
        make_processor("Nope")
    with pytest.raises(ValueError, match=r"processor Fillna: bad arguments \['colour'\]"):
        make_processor("Fillna", colour="red")
    with pytest.raises(ValueError, match="fields_group='features' is not one of"):
        Fillna("features")
    with pytest.raises(ValueError, match="CSZScoreNorm method='minmax' is not one of"):
        CSZScoreNorm(method="minmax")
    with pytest.raises(ValueError, match="ZScoreNorm is not fitted"):
        ZScoreNorm(D1, D1).transform(make_panel([("A", D1, [1.0], 0)]))
    with pytest.raises(ValueError, match="ZScoreNorm needs fit_start_time and fit_end_time"):
        ZScoreNorm().fit(make_panel([("A", D1, [1.0], 0)]))
    with pytest.raises(ValueError, match="no rows in the fit window"):
        ZScoreNorm(D3, D3).fit(make_panel([("A", D1, [1.0], 0)]))
    assert sorted(PROCESSORS) == sorted(
        [
            "DropnaProcessor",
            "DropnaLabel",
            "ProcessInf",
            "Fillna",
            "ZScoreNorm",
            "RobustZScoreNorm",
            "MinMaxNorm",
            "CSZScoreNorm",
            "CSRankNorm",
            "FilterCol",
        ]
    )


def test_fitted_processor_checks_columns() -> None:
    p = make_panel([("A", D1, [1.0, 2.0], 0), ("B", D1, [2.0, 3.0], 0)])
    proc = ZScoreNorm(D1, D1, fields_group="feature")
    proc.fit(p)
    with pytest.raises(ValueError, match="fitted on feature columns"):
        proc.transform(FilterCol("feature", ["F0"]).transform(p))


def test_inplace_only_writes_writeable_blocks() -> None:
    p = make_panel([("A", D1, [np.nan], 0), ("B", D1, [1.0], 0)])
    frozen = p.frozen()
    Fillna().transform(frozen, inplace=True)
    assert np.isnan(p.features[0, 0])
    Fillna().transform(p, inplace=True)
    assert p.features[0, 0] == 0.0
