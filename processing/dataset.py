"""The two dataset views handed to the models as :class:`SampleSet`.

* flat (Qlib's ``DatasetH``): one sample per (date, instrument) row of the segment, in that order.
* sequence (Qlib's ``TSDatasetH`` + ``TSDataSampler``): the rows fetched start ``step_len`` calendar dates before
  the segment start; one sample per row dated inside the segment, ordered by instrument then date; the window
  is the ``step_len`` grid days ending on the sample's own day, filled per ``fillna_type``. The label is the
  last step's, i.e. the sample's own row's.

Windows only look backwards, so nothing dated after a sample enters its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from features.dates import DateLike, to_day
from processing.handler import FittedHandler
from processing.panel import Panel
from processing.samples import LAYOUTS, Layout, SampleSet
from processing.windows import extended_start, sequence_index

# Segments read from DK_L (training data); any other segment reads DK_I with the raw label.
LEARN_SEGMENTS = ("train", "valid")
# Alpha360 rows hold 6 blocks of 60 days (close, open, high, low, vwap, volume).
ALPHA360_D_FEAT = 6


def normalize_segments(segments: Any) -> dict[str, tuple[np.datetime64, np.datetime64]]:
    """``{name: (start, end)}`` with inclusive dates; also accepts an object with ``as_dict()``."""
    if hasattr(segments, "as_dict"):
        segments = segments.as_dict()
    if not isinstance(segments, Mapping) or not segments:
        raise ValueError(f"segments must be a non-empty mapping name -> (start, end), got {segments!r:.100}")
    out: dict[str, tuple[np.datetime64, np.datetime64]] = {}
    for name, rng in segments.items():
        if not isinstance(rng, (tuple, list)) or len(rng) != 2:
            raise ValueError(f"segment {name!r} must be a (start, end) pair, got {rng!r}")
        lo, hi = to_day(rng[0], f"{name} start"), to_day(rng[1], f"{name} end")
        if lo is None or hi is None or hi < lo:
            raise ValueError(f"segment {name!r} has an invalid date range {rng[0]}..{rng[1]}")
        out[str(name)] = (lo, hi)
    return out


def _labels(panel: Panel, lo: int, hi: int, raw_labels: np.ndarray | None) -> np.ndarray:
    if raw_labels is not None:
        return raw_labels[panel.row_ids[lo:hi]].astype(np.float32)
    if panel.labels.shape[1] == 0:
        return np.full(hi - lo, np.nan, dtype=np.float32)
    return panel.labels[lo:hi, 0].astype(np.float32)


def _shareable(rows: np.ndarray) -> np.ndarray:
    """A writeable view of the rows when their memory allows it (torch.from_numpy warns on read-only arrays)."""
    if rows.flags.writeable:
        return rows
    view = rows.view()
    try:
        view.flags.writeable = True
    except ValueError:
        return rows.copy()
    return view


def _empty(segment: str, start: DateLike, end: DateLike) -> ValueError:
    return ValueError(f"segment {segment!r} ({to_day(start)}..{to_day(end)}) has no samples")


def build_flat_samples(
    panel: Panel,
    start: DateLike,
    end: DateLike,
    *,
    d_feat: int | None = None,
    raw_labels: np.ndarray | None = None,
    segment: str = "segment",
) -> SampleSet:
    """Qlib's ``DatasetH.prepare``: the rows dated in [start, end], (date, instrument) order, rows shared (view).

    ``d_feat`` splits each row into blocks for the model's reshape (Alpha360: 6); default one block.
    ``raw_labels`` (indexed by ``panel.row_ids``) replaces the panel's label, e.g. DK_R for the test segment.
    """
    lo, hi = panel.date_bounds(start, end)
    if hi <= lo:
        raise _empty(segment, start, end)
    rows = _shareable(panel.features[lo:hi])
    return SampleSet(
        rows=rows,
        windows=np.arange(hi - lo, dtype=np.int64)[:, None],
        labels=_labels(panel, lo, hi, raw_labels),
        dates=panel.dates[lo:hi],
        instruments=panel.instrument_names[panel.inst_codes[lo:hi]],
        layout="flat",
        d_feat=rows.shape[1] if d_feat is None else d_feat,
        feature_names=list(panel.feature_names),
    )


def build_sequence_samples(
    panel: Panel,
    start: DateLike,
    end: DateLike,
    *,
    step_len: int = 20,
    fillna_type: str = "ffill+bfill",
    calendar: np.ndarray | None = None,
    raw_labels: np.ndarray | None = None,
    segment: str = "segment",
) -> SampleSet:
    """Qlib's ``TSDatasetH`` + ``TSDataSampler`` for [start, end].

    ``calendar`` is the handler's DK_I dates used to extend the fetch backwards (default: the panel's dates).
    Rows fetched are stored once plus one all-NaN padding row (the last row).
    """
    start_d, end_d = to_day(start, "start"), to_day(end, "end")
    cal = panel.unique_dates() if calendar is None else np.asarray(calendar, dtype="datetime64[D]")
    fetch_start = extended_start(cal, start_d, step_len)
    if fetch_start is None:
        raise _empty(segment, start, end)
    lo, hi = panel.date_bounds(fetch_start, end_d)
    if hi <= lo:
        raise _empty(segment, start, end)
    dates = panel.dates[lo:hi]
    starts = np.concatenate(([0], np.flatnonzero(dates[1:] != dates[:-1]) + 1))
    date_idx = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(dates))))
    samples, windows = sequence_index(
        date_idx,
        panel.inst_codes[lo:hi],
        n_dates=len(starts),
        is_sample=dates >= start_d,
        step_len=step_len,
        fillna_type=fillna_type,
        pad_row=hi - lo,
    )
    if len(samples) == 0:
        raise _empty(segment, start, end)
    n_feat = panel.features.shape[1]
    rows = np.empty((hi - lo + 1, n_feat), dtype=np.float32)
    rows[:-1] = panel.features[lo:hi]
    rows[-1] = np.nan
    labels = _labels(panel, lo, hi, raw_labels)[samples]
    return SampleSet(
        rows=rows,
        windows=windows,
        labels=labels,
        dates=dates[samples],
        instruments=panel.instrument_names[panel.inst_codes[lo:hi][samples]],
        layout="sequence",
        d_feat=n_feat,
        feature_names=list(panel.feature_names),
    )


def build_segments(
    handler: FittedHandler,
    features: pl.DataFrame,
    labels: pl.DataFrame | None,
    segments: Any,
    layout: Layout = "flat",
    step_len: int = 20,
    membership: pl.DataFrame | None = None,
    *,
    fillna_type: str = "ffill+bfill",
    d_feat: int | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
) -> dict[str, SampleSet]:
    """Sample sets per segment: train and valid from DK_L, any other segment (test) from DK_I with the raw DK_R
    label for evaluation, as Qlib's benchmark models and SignalRecord read them.

    ``start`` / ``end`` are the handler's data range (None: all the data). For the flat layout ``d_feat`` defaults
    to 6 for Alpha360 and to the number of features otherwise.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not one of {list(LAYOUTS)}")
    segs = normalize_segments(segments)
    data = handler.process(features, labels, membership=membership, start=start, end=end)
    cal = data.calendar

    learn_names = [n for n in segs if n in LEARN_SEGMENTS]
    learn_panel: Panel | None = None
    if learn_names:
        if layout == "sequence":
            firsts = [extended_start(cal, segs[n][0], step_len) for n in learn_names]
            first = min((f for f in firsts if f is not None), default=None)
        else:
            first = min(segs[n][0] for n in learn_names)
        learn_panel = data.learn(first, max(segs[n][1] for n in learn_names)) if first is not None else None

    if d_feat is None and layout == "flat":
        d_feat = ALPHA360_D_FEAT if handler.config.feature_set == "alpha360" else None

    out: dict[str, SampleSet] = {}
    for name, (lo, hi) in segs.items():
        is_learn = name in LEARN_SEGMENTS
        panel = learn_panel if is_learn else data.infer
        if panel is None:
            raise _empty(name, lo, hi)
        raw = None if is_learn else data.raw_labels
        if layout == "flat":
            out[name] = build_flat_samples(panel, lo, hi, d_feat=d_feat, raw_labels=raw, segment=name)
        else:
            out[name] = build_sequence_samples(
                panel, lo, hi, step_len=step_len, fillna_type=fillna_type, calendar=cal, raw_labels=raw, segment=name
            )
    return out
