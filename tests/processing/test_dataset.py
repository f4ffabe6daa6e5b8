"""Flat and sequence views: order, padding / fill rules against a plain reference, segments, no leakage."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from processing.dataset import build_flat_samples, build_segments, build_sequence_samples, normalize_segments
from processing.handler import fit_handler
from processing.panel import panel_from_frames
from processing.windows import extended_start
from tests.processing.helpers import LABEL, random_frames

SEGMENTS = {
    "train": ("2022-01-03", "2022-01-31"),
    "valid": ("2022-02-01", "2022-02-11"),
    "test": ("2022-02-14", "2022-03-31"),
}


def reference_windows(panel, start, end, step_len, fillna_type, calendar=None):
    """TSDataSampler written out sample by sample (the behaviour the vectorised code must reproduce)."""
    cal = sorted(set(panel.dates.tolist())) if calendar is None else list(calendar)
    s, e = np.datetime64(start, "D"), np.datetime64(end, "D")
    i0 = int(np.searchsorted(np.array(cal, dtype="datetime64[D]"), s))
    fetch_start = np.datetime64(cal[max(0, i0 - step_len)], "D")
    rows = [r for r in range(panel.n_rows) if fetch_start <= panel.dates[r] <= e]
    grid_dates = sorted({panel.dates[r] for r in rows})
    insts = sorted({panel.instrument_names[panel.inst_codes[r]] for r in rows})
    cell = {(panel.dates[r], panel.instrument_names[panel.inst_codes[r]]): r for r in rows}
    samples = sorted(
        (r for r in rows if panel.dates[r] >= s),
        key=lambda r: (panel.instrument_names[panel.inst_codes[r]], panel.dates[r]),
    )
    out = []
    for r in samples:
        inst = panel.instrument_names[panel.inst_codes[r]]
        i = grid_dates.index(panel.dates[r])
        idx = [cell.get((grid_dates[k], inst)) if k >= 0 else None for k in range(i - step_len + 1, i + 1)]
        assert len(insts) > 0
        if fillna_type in ("ffill", "ffill+bfill"):
            for k in range(1, step_len):
                if idx[k] is None:
                    idx[k] = idx[k - 1]
        if fillna_type == "ffill+bfill":
            for k in range(step_len - 2, -1, -1):
                if idx[k] is None:
                    idx[k] = idx[k + 1]
        x = np.stack([panel.features[j] if j is not None else np.full(panel.features.shape[1], np.nan) for j in idx])
        out.append((panel.dates[r], inst, x, panel.labels[r, 0]))
    return out


@pytest.mark.parametrize("fillna_type", ["none", "ffill", "ffill+bfill"])
@pytest.mark.parametrize(("step_len", "seed"), [(1, 0), (5, 1), (20, 2)])
def test_sequence_windows_match_reference(fillna_type: str, step_len: int, seed: int) -> None:
    feats, labels = random_frames(n_inst=9, n_days=45, seed=seed, hole_rate=0.25)
    panel = panel_from_frames(feats, labels)
    ss = build_sequence_samples(panel, "2022-01-20", "2022-02-18", step_len=step_len, fillna_type=fillna_type)
    ref = reference_windows(panel, "2022-01-20", "2022-02-18", step_len, fillna_type)
    assert ss.n_samples == len(ref) and ss.layout == "sequence" and ss.windows.shape == (len(ref), step_len)
    assert ss.dates.tolist() == [r[0] for r in ref]
    assert ss.instruments.tolist() == [r[1] for r in ref]
    np.testing.assert_array_equal(ss.dense_inputs(), np.stack([r[2] for r in ref]))
    np.testing.assert_array_equal(ss.labels, np.array([r[3] for r in ref], dtype=np.float32))
    assert np.isnan(ss.rows[-1]).all()  # the padding row
    assert ss.windows.min() >= 0 and ss.windows.max() <= len(ss.rows) - 1


def test_sequence_padding_rules_by_hand() -> None:
    # One stock with rows on days 0, 2, 3 of a 4-day grid (another stock fills the grid); step_len 4.
    days = ["2022-01-03", "2022-01-04", "2022-01-05", "2022-01-06"]
    feats = pl.DataFrame(
        {
            "instrument": ["A", "A", "A", "B", "B", "B", "B"],
            "date": pl.Series(["2022-01-03", "2022-01-05", "2022-01-06", *days]).str.to_date(),
            "F0": [10.0, 12.0, 13.0, 0.0, 1.0, 2.0, 3.0],
        }
    )
    panel = panel_from_frames(feats, None)
    a_rows = {d: i for i, d in enumerate(panel.dates.astype(str)) if panel.inst_codes[i] == 0}
    pad = panel.n_rows
    expect = {
        "none": [
            [pad, a_rows[days[0]], pad, a_rows[days[2]]],
            [a_rows[days[0]], pad, a_rows[days[2]], a_rows[days[3]]],
        ],
        "ffill": [
            [pad, a_rows[days[0]], a_rows[days[0]], a_rows[days[2]]],
            [a_rows[days[0]], a_rows[days[0]], a_rows[days[2]], a_rows[days[3]]],
        ],
        "ffill+bfill": [
            [a_rows[days[0]], a_rows[days[0]], a_rows[days[0]], a_rows[days[2]]],
            [a_rows[days[0]], a_rows[days[0]], a_rows[days[2]], a_rows[days[3]]],
        ],
    }
    for fill, want in expect.items():
        ss = build_sequence_samples(panel, "2022-01-05", "2022-01-06", step_len=4, fillna_type=fill)
        # A's two samples come first (instrument, then date); rows are the fetched rows plus the padding row.
        assert ss.instruments.tolist() == ["A", "A", "B", "B"]
        assert ss.windows[:2].tolist() == want, fill
        assert len(ss.rows) == pad + 1


def test_sequence_fetch_starts_step_len_calendar_rows_back() -> None:
    cal = np.array(["2022-01-03", "2022-01-04", "2022-01-05", "2022-01-06", "2022-01-07"], dtype="datetime64[D]")
    assert extended_start(cal, np.datetime64("2022-01-06"), 2) == np.datetime64("2022-01-04")
    assert extended_start(cal, np.datetime64("2022-01-01"), 2) == np.datetime64("2022-01-03")
    assert extended_start(cal, np.datetime64("2022-01-08"), 2) is None
    # A calendar date missing from the panel (e.g. every label dropped that day) still counts as a step.
    feats, labels = random_frames(n_inst=4, n_days=20, seed=3, hole_rate=0.0)
    panel = panel_from_frames(feats, labels)
    gap = panel.take(panel.dates != np.datetime64("2022-01-18"))
    full_cal = panel.unique_dates()
    ss = build_sequence_samples(gap, "2022-01-20", "2022-01-28", step_len=3, calendar=full_cal, fillna_type="none")
    ref = reference_windows(gap, "2022-01-20", "2022-01-28", 3, "none", calendar=full_cal)
    np.testing.assert_array_equal(ss.dense_inputs(), np.stack([r[2] for r in ref]))
    assert (
        ss.rows.shape[0] - 1 == gap.date_bounds("2022-01-17", "2022-01-28")[1] - gap.date_bounds("2022-01-17", None)[0]
    )


def test_flat_view_order_views_rows_and_alpha360_reshape() -> None:
    names = [f"{b}{i}" for b in ("CLOSE", "OPEN", "HIGH", "LOW", "VWAP", "VOLUME") for i in range(59, -1, -1)]
    feats, labels = random_frames(n_inst=5, n_days=8, names=names, seed=4)
    panel = panel_from_frames(feats, labels)
    ss = build_flat_samples(panel, "2022-01-04", "2022-01-11", d_feat=6)
    assert np.shares_memory(ss.rows, panel.features)
    order = list(zip(ss.dates.tolist(), ss.instruments.tolist(), strict=True))
    assert order == sorted(order)
    x = ss.dense_inputs()
    assert x.shape == (ss.n_samples, 60, 6) and ss.step_len == 60
    k = 3
    row = ss.rows[ss.windows[k, 0]]
    assert x[k, 0, 0] == row[names.index("CLOSE59")] or np.isnan(row[names.index("CLOSE59")])
    np.testing.assert_array_equal(
        x[k, -1], row[[names.index(f"{b}0") for b in ("CLOSE", "OPEN", "HIGH", "LOW", "VWAP", "VOLUME")]]
    )


def test_build_segments_data_keys() -> None:
    feats, labels = random_frames(n_inst=10, n_days=60, seed=5)
    h = fit_handler("alpha360_rnn", feats, labels, *SEGMENTS["train"])
    for view in ("flat", "sequence"):
        sets = build_segments(h, feats, labels, SEGMENTS, layout=view, step_len=5, d_feat=5)
        assert list(sets) == ["train", "valid", "test"]
        for name in ("train", "valid"):
            assert not np.isnan(sets[name].labels).any()  # DK_L: DropnaLabel
            assert np.abs(sets[name].labels).max() <= 1.73 + 1e-6  # CSRankNorm
        test = sets["test"]
        raw = h.transform(feats, labels, "raw", start=SEGMENTS["test"][0])
        lookup = dict(
            zip(zip(raw.dates.tolist(), raw.instruments().tolist(), strict=True), raw.labels[:, 0], strict=True)
        )
        want = np.array([lookup[(d, i)] for d, i in zip(test.dates.tolist(), test.instruments.tolist(), strict=True)])
        np.testing.assert_array_equal(test.labels, want)  # DK_R label, NaN kept
        assert np.isnan(test.labels).any()
        for ss in sets.values():
            assert not np.isnan(ss.dense_inputs()).any() or view == "sequence"


def test_segments_errors_and_object_input() -> None:
    class Segs:
        def as_dict(self):
            return {"train": ["2022-01-03", "2022-01-31"], "test": ["2022-02-01", "2022-02-28"]}

    assert normalize_segments(Segs())["test"] == (np.datetime64("2022-02-01"), np.datetime64("2022-02-28"))
    with pytest.raises(ValueError, match="segment 'train' has an invalid date range 2022-02-01..2022-01-01"):
        normalize_segments({"train": ("2022-02-01", "2022-01-01")})
    feats, labels = random_frames(n_inst=4, n_days=30, seed=6)
    h = fit_handler("alpha360_rnn", feats, labels, "2022-01-03", "2022-01-20")
    with pytest.raises(ValueError, match=r"segment 'test' \(2023-01-01\.\.2023-02-01\) has no samples"):
        segs = {"train": ("2022-01-03", "2022-01-20"), "test": ("2023-01-01", "2023-02-01")}
        build_segments(h, feats, labels, segs, d_feat=5)
    with pytest.raises(ValueError, match=r"segment 'test' \(2023-01-01\.\.2023-02-01\) has no samples"):
        build_segments(h, feats, labels, {"test": ("2023-01-01", "2023-02-01")}, layout="sequence")
    with pytest.raises(ValueError, match="layout='cube' is not one of"):
        build_segments(h, feats, labels, SEGMENTS, layout="cube")
    with pytest.raises(ValueError, match="fillna_type='zero' is not one of"):
        build_segments(h, feats, labels, SEGMENTS, layout="sequence", fillna_type="zero")


@pytest.mark.parametrize(
    ("config", "view"), [("alpha360_rnn", "flat"), ("alpha360_rnn", "sequence"), ("alpha360", "flat")]
)
def test_no_leakage_from_later_days(config: str, view: str) -> None:
    """Changing every feature and label dated after T leaves the inputs (and labels) of samples dated <= T as they
    were: windows only look back, cross-sectional steps stay within a day, statistics come from the fit window."""
    feats, labels = random_frames(n_inst=10, n_days=60, seed=7)
    cutoff = np.datetime64("2022-02-22")
    h = fit_handler(config, feats, labels, *SEGMENTS["train"])
    rng = np.random.default_rng(0)
    later = pl.col("date") > pl.lit(cutoff.astype(object))
    feats2 = feats.with_columns(
        pl.when(later).then(pl.col(c) * 3 + float(rng.normal())).otherwise(pl.col(c)).alias(c)
        for c in feats.columns[2:]
    )
    labels2 = labels.with_columns(pl.when(later).then(-pl.col(LABEL) + 1).otherwise(pl.col(LABEL)).alias(LABEL))
    a = build_segments(h, feats, labels, SEGMENTS, layout=view, step_len=10, d_feat=5)
    b = build_segments(h, feats2, labels2, SEGMENTS, layout=view, step_len=10, d_feat=5)
    changed_later = False
    for name in SEGMENTS:
        x, y = a[name], b[name]
        np.testing.assert_array_equal(x.dates, y.dates)
        past = x.dates <= cutoff
        np.testing.assert_array_equal(x.dense_inputs(np.flatnonzero(past)), y.dense_inputs(np.flatnonzero(past)))
        np.testing.assert_array_equal(x.labels[past], y.labels[past])
        if (~past).any():
            changed_later |= not np.array_equal(
                x.dense_inputs(np.flatnonzero(~past)), y.dense_inputs(np.flatnonzero(~past))
            )
    assert changed_later  # the perturbation did reach the later samples
