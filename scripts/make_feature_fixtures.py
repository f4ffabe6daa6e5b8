"""Dev-only: build the committed parity fixtures for features/ from a small RANDOM market and pyqlib 0.9.7.

Run with the Qlib environment (it has pyqlib; the project itself is not imported):

    /work/qlibenv/bin/python scripts/make_feature_fixtures.py

It generates synthetic bars with the awkward cases the features must handle (suspended days as missing rows,
forward-filled zero-volume suspensions, flat days with high == low, tick-grid ties, a very high price, a short
instrument, one starting late, one ending early, a factor change, a one-bar instrument, gaps in vwap), writes
them as a Qlib binary directory with a tiny numpy writer, evaluates Alpha158DL/Alpha360DL's expressions and the
label with ``qlib.data.D.features``, and saves inputs and Qlib's outputs under tests/fixtures/features/.
Nothing here comes from real market data.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "features"
N_DAYS = 150
SEED = 20240607
LABEL_EXPR = "Ref($close, -2)/Ref($close, -1) - 1"


def make_calendar() -> list[dt.date]:
    days = pd.bdate_range("2021-01-04", periods=N_DAYS + 10)
    days = days.delete([7, 31, 32, 77])  # a few market holidays
    return [d.date() for d in days[:N_DAYS]]


def _walk(rng: np.random.Generator, n: int, start: float, vol: float, tick: float) -> np.ndarray:
    raw = start * np.exp(np.cumsum(rng.normal(0, vol, n)))
    return np.maximum(np.round(raw / tick) * tick, tick)


def _instrument(
    rng: np.random.Generator,
    name: str,
    first: int,
    last: int,
    price: float,
    vol: float = 0.02,
    factor: float = 1.0,
    tick: float = 0.01,
) -> pd.DataFrame:
    n = last - first + 1
    close = _walk(rng, n, price, vol, tick)
    prev = np.concatenate([[close[0]], close[:-1]])
    open_ = np.maximum(np.round(prev * (1 + rng.normal(0, vol / 3, n)) / tick) * tick, tick)
    high = np.maximum(open_, close) + np.round(np.abs(rng.normal(0, vol / 2, n)) * price / tick) * tick
    low = np.maximum(np.minimum(open_, close) - np.round(np.abs(rng.normal(0, vol / 2, n)) * price / tick) * tick, tick)
    volume = np.round(np.exp(rng.normal(13, 0.6, n)) / 100) * 100
    vwap = np.round((low + (high - low) * rng.uniform(0.2, 0.8, n)) / tick) * tick
    return pd.DataFrame(
        {
            "instrument": name,
            "t": np.arange(first, last + 1),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "vwap": vwap,
            "factor": factor,
        }
    )


def _flat_day(df: pd.DataFrame, rows: list[int], volume: float | None = None) -> None:
    """Make the given rows flat days (open = high = low = close = previous close)."""
    for r in rows:
        p = df.loc[r - 1, "close"] if r > 0 else df.loc[r, "close"]
        df.loc[r, ["open", "high", "low", "close", "vwap"]] = p
        if volume is not None:
            df.loc[r, "volume"] = volume


def make_bars(calendar: list[dt.date]) -> pl.DataFrame:
    rng = np.random.default_rng(SEED)
    parts = []

    a = _instrument(rng, "SH600001", 0, N_DAYS - 1, 10.0)
    _flat_day(a, [15, 16], volume=None)  # limit-locked days: high == low with volume
    parts.append(a)

    b = _instrument(rng, "SH600002", 0, N_DAYS - 1, 25.0)
    parts.append(b[~b["t"].isin([20, 21, 22, 23, 24, 25, 26, 27, 50, 51, 90])])  # suspended: missing rows

    c = _instrument(rng, "SH600003", 0, N_DAYS - 1, 8.0)
    _flat_day(c, list(range(30, 42)) + [70, 100], volume=0.0)  # forward-filled suspensions, zero volume
    parts.append(c)

    d = _instrument(rng, "SH600004", 0, N_DAYS - 1, 2.0, vol=0.004)  # tick-grid ties everywhere
    _flat_day(d, [10, 11, 12, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72])
    parts.append(d)

    parts.append(_instrument(rng, "SH600005", 70, N_DAYS - 1, 15.0))  # starts late

    f = _instrument(rng, "SH600006", 40, 79, 30.0)  # shorter than 60 days, with gaps
    parts.append(f[~f["t"].isin([45, 46, 60])])

    g = _instrument(rng, "SZ000007", 0, N_DAYS - 1, 2000.0, vol=0.015, factor=40.0)  # very high adjusted price
    _flat_day(g, [80, 81, 82, 83, 84, 85, 86, 87, 88], volume=0.0)
    parts.append(g)

    parts.append(_instrument(rng, "SZ000008", 0, 110, 12.0))  # ends early

    i = _instrument(rng, "SZ000009", 0, N_DAYS - 1, 6.0)
    i.loc[i["t"] >= 75, "factor"] = 1.25  # adjustment factor change
    i.loc[rng.random(len(i)) < 0.15, "vwap"] = np.nan  # vwap missing on some days
    i.loc[[0, 3], "volume"] = 0.0  # zero volume on the first days
    parts.append(i[i["t"] != 1])

    parts.append(_instrument(rng, "SZ000010", N_DAYS - 1, N_DAYS - 1, 9.0))  # a single bar
    parts.append(_instrument(rng, "SZ000011", 100, 104, 4.0))  # five bars

    k = _instrument(rng, "SZ000012", 0, N_DAYS - 1, 50.0, vol=0.03)
    k.loc[[5, 40, 41], "volume"] = 0.0
    parts.append(k[~k["t"].isin([2, 3])])

    raw = pd.concat(parts, ignore_index=True)
    # adjusted prices and volume the way Qlib stores them, rounded to float32
    for col in ("open", "high", "low", "close", "vwap"):
        raw[col] = (raw[col] * raw["factor"]).astype(np.float32)
    raw["volume"] = (raw["volume"] / raw["factor"]).astype(np.float32)
    raw = raw.sort_values(["instrument", "t"])
    raw["change"] = (raw["close"] / raw.groupby("instrument")["close"].shift(1) - 1).astype(np.float32)
    raw["date"] = [calendar[t] for t in raw["t"]]
    frame = pl.from_pandas(raw.drop(columns="t"))
    cols = ["open", "high", "low", "close", "volume", "factor", "change", "vwap"]
    return frame.select(
        pl.col("instrument"), pl.col("date").cast(pl.Date), *[pl.col(c).cast(pl.Float32).cast(pl.Float64) for c in cols]
    ).sort(["instrument", "date"])


BIN_FIELDS = ("open", "high", "low", "close", "volume", "factor", "change", "vwap")


def write_qlib_bin(
    root: Path, bars: pl.DataFrame, calendar: list[dt.date], fields: tuple[str, ...] = BIN_FIELDS
) -> None:
    """Minimal Qlib binary writer: each field file = [first calendar index, values over first..last day]."""
    (root / "calendars").mkdir(parents=True)
    (root / "instruments").mkdir()
    (root / "calendars" / "day.txt").write_text("".join(f"{d}\n" for d in calendar))
    index = {d: i for i, d in enumerate(calendar)}
    lines = []
    for (inst,), grp in bars.group_by(["instrument"], maintain_order=True):
        pos = np.array([index[d] for d in grp["date"].to_list()])
        first, last = pos.min(), pos.max()
        folder = root / "features" / inst.lower()
        folder.mkdir(parents=True)
        for field in fields:
            values = np.full(last - first + 1, np.nan, dtype="<f4")
            values[pos - first] = grp[field].fill_null(np.nan).to_numpy().astype("<f4")
            np.concatenate([[np.float32(first)], values]).astype("<f4").tofile(folder / f"{field}.day.bin")
        lines.append(f"{inst}\t{calendar[first]}\t{calendar[last]}\n")
    (root / "instruments" / "all.txt").write_text("".join(lines))


def qlib_features(root: Path, instruments: list[str], calendar: list[dt.date]) -> dict[str, pl.DataFrame]:
    import qlib
    from qlib.contrib.data.loader import Alpha158DL, Alpha360DL
    from qlib.data import D

    qlib.init(provider_uri=str(root), region="cn", kernels=1)
    sets = {
        "alpha158": Alpha158DL.get_feature_config(),
        "alpha360": Alpha360DL.get_feature_config(),
        "label": ([LABEL_EXPR], ["LABEL0"]),
    }
    out = {}
    for name, (fields, names) in sets.items():
        assert len(set(fields)) == len(fields), f"duplicate expressions in {name}"
        df = D.features(instruments, fields, start_time=str(calendar[0]), end_time=str(calendar[-1]), freq="day")
        df.columns = names
        df = df.reset_index()
        frame = pl.from_pandas(df).rename({"datetime": "date"})
        frame = frame.with_columns(pl.col("date").cast(pl.Date), pl.col(names).cast(pl.Float32))
        out[name] = frame.sort(["instrument", "date"])
    return out


def main() -> int:
    calendar = make_calendar()
    bars = make_bars(calendar)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "qlib_data"
        write_qlib_bin(root, bars, calendar)
        results = qlib_features(root, sorted(bars["instrument"].unique().to_list()), calendar)
    OUT.mkdir(parents=True, exist_ok=True)
    bars.write_parquet(OUT / "bars.parquet", compression="zstd", compression_level=19)
    pl.DataFrame({"date": calendar}).write_parquet(OUT / "calendar.parquet")
    for name, frame in results.items():
        # parquet keeps NaN and +-inf in float columns, so Qlib's missing values stay NaN (not null)
        frame.write_parquet(OUT / f"qlib_{name}.parquet", compression="zstd", compression_level=19)
    for path in sorted(OUT.glob("*.parquet")):
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
    print(f"bars: {bars.height} rows, {bars['instrument'].n_unique()} instruments; rows per set:",
          {k: v.height for k, v in results.items()})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
