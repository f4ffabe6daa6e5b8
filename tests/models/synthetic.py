"""Synthetic SampleSets: a panel of instruments x days whose label is a planted function of past inputs."""

from __future__ import annotations

import numpy as np

from processing.samples import SampleSet


def _signal(x: np.ndarray) -> np.ndarray:
    """The planted rule, on inputs [n, T, d_feat]: today's feature 0 times yesterday's feature 1.

    A pure interaction: no single input (and no function close to linear, like an untrained network) is
    correlated with it, so a model that learned nothing scores an IC near zero.
    """
    return x[:, -1, 0] * x[:, -2, 1]


def _panel(n_inst: int, n_days: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    days = np.datetime64("2020-01-01") + np.arange(n_days)
    names = np.array([f"SH6{i:05d}" for i in range(n_inst)])
    return days, names, rng


def flat_set(
    n_inst: int = 40, n_days: int = 40, d_feat: int = 3, steps: int = 8, seed: int = 0, noise: float = 0.5
) -> SampleSet:
    """DatasetH-like: one row per (date, instrument), d_feat blocks of ``steps`` values, oldest first."""
    days, names, rng = _panel(n_inst, n_days, seed)
    n = n_inst * n_days
    rows = rng.standard_normal((n, d_feat * steps)).astype(np.float32)
    x = rows.reshape(n, d_feat, steps).transpose(0, 2, 1)
    labels = (_signal(x) + noise * rng.standard_normal(n)).astype(np.float32)
    return SampleSet(
        rows=rows,
        windows=np.arange(n, dtype=np.int64)[:, None],
        labels=labels,
        dates=np.repeat(days, n_inst),
        instruments=np.tile(names, n_days),
        layout="flat",
        d_feat=d_feat,
    )


def sequence_set(
    n_inst: int = 40, n_days: int = 40, d_feat: int = 4, step_len: int = 6, seed: int = 0, noise: float = 0.5
) -> SampleSet:
    """TSDatasetH-like: rows in (instrument, date) order, windows of the last ``step_len`` rows of the same
    instrument, the first rows repeated where the history is short (as ffill+bfill), samples instrument-major."""
    days, names, rng = _panel(n_inst, n_days, seed)
    n = n_inst * n_days
    rows = rng.standard_normal((n, d_feat)).astype(np.float32)
    day = np.tile(np.arange(n_days), n_inst)
    first = np.repeat(np.arange(n_inst) * n_days, n_days)
    offsets = np.arange(-step_len + 1, 1)
    windows = first[:, None] + np.maximum(day[:, None] + offsets[None, :], 0)
    labels = (_signal(rows[windows]) + noise * rng.standard_normal(n)).astype(np.float32)
    return SampleSet(
        rows=rows,
        windows=windows.astype(np.int64),
        labels=labels,
        dates=np.tile(days, n_inst),
        instruments=np.repeat(names, n_days),
        layout="sequence",
        d_feat=d_feat,
    )


def daily_ic(scores: np.ndarray, samples: SampleSet) -> float:
    """Mean over dates of the Pearson correlation between scores and labels (Qlib's IC)."""
    ics = []
    for day in np.unique(samples.dates):
        m = samples.dates == day
        ics.append(np.corrcoef(scores[m], samples.labels[m])[0, 1])
    return float(np.mean(ics))


def shuffle_labels_within_dates(samples: SampleSet, seed: int = 0) -> SampleSet:
    """The same samples with labels permuted across instruments inside each date."""
    rng = np.random.default_rng(seed)
    labels = samples.labels.copy()
    for day in np.unique(samples.dates):
        idx = np.flatnonzero(samples.dates == day)
        labels[idx] = labels[rng.permutation(idx)]
    return SampleSet(
        samples.rows, samples.windows, labels, samples.dates, samples.instruments, samples.layout, samples.d_feat
    )
