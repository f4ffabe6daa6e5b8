"""Shared helpers of the processing tests: the pyqlib fixtures and small random panels."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "processing"
LABEL = "LABEL0"


@cache
def meta() -> dict:
    return json.loads((FIXTURES / "meta.json").read_text())


@cache
def _inputs() -> pl.DataFrame:
    return pl.read_parquet(FIXTURES / "inputs.parquet")


def fixture_inputs() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(features, labels, membership) of the random parity panel."""
    df = _inputs()
    return df.drop(LABEL), df.select("instrument", "date", LABEL), pl.read_parquet(FIXTURES / "membership.parquet")


def fixture_frame(name: str) -> pl.DataFrame:
    return pl.read_parquet(FIXTURES / f"{name}.parquet")


def fixture_npz(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def assert_frames_close(ours: pl.DataFrame, theirs: pl.DataFrame, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    """Same keys in the same order, same columns, values close with NaN / inf in the same places."""
    assert ours.columns == theirs.columns, (ours.columns, theirs.columns)
    assert ours["instrument"].to_list() == theirs["instrument"].to_list()
    assert ours["date"].to_list() == theirs["date"].to_list()
    for col in ours.columns[2:]:
        a = ours[col].cast(pl.Float64).fill_null(np.nan).to_numpy()
        b = theirs[col].cast(pl.Float64).fill_null(np.nan).to_numpy()
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=col)


def random_frames(
    n_inst: int = 12,
    n_days: int = 40,
    n_feat: int = 5,
    seed: int = 0,
    hole_rate: float = 0.1,
    nan_rate: float = 0.05,
    names: list[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Features and labels on business days from 2022-01-03, with missing rows and NaNs."""
    rng = np.random.default_rng(seed)
    days = [d for d in (dt.date(2022, 1, 3) + dt.timedelta(days=i) for i in range(n_days * 2)) if d.weekday() < 5]
    days = days[:n_days]
    insts = [f"SH{600000 + i:06d}" for i in range(n_inst)]
    inst_col = np.repeat(insts, n_days)
    date_col = days * n_inst
    keep = rng.random(len(inst_col)) > hole_rate
    names = names or [f"F{j}" for j in range(n_feat)]
    x = rng.normal(size=(len(inst_col), len(names))).astype(np.float32)
    x[rng.random(x.shape) < nan_rate] = np.nan
    y = rng.normal(size=len(inst_col)).astype(np.float32)
    y[rng.random(len(y)) < nan_rate] = np.nan
    keys = pl.DataFrame({"instrument": inst_col, "date": pl.Series(date_col, dtype=pl.Date)})
    feats = keys.with_columns(pl.Series(n, x[:, j]) for j, n in enumerate(names)).filter(pl.Series(keep))
    labels = keys.with_columns(pl.Series(LABEL, y)).filter(pl.Series(keep))
    return feats, labels
