"""Dev-only: build the committed per-operator fixture (issue 12) from a small RANDOM market and pyqlib 0.9.7.

Run with the Qlib environment (it has pyqlib; the project itself is not imported):

    /work/qlibenv/bin/python scripts/make_operator_fixtures.py

It generates a few instruments over a few hundred days with the cases operators trip on (runs of NaN, missing
rows for suspensions, zeros, exact ties, very large and nearly constant values, a late start, an early end, a
short instrument), writes them as a Qlib binary directory, evaluates with ``qlib.data.D.features`` every
operator of the engine's table that Qlib 0.9.7 has (all but the cross-sectional CS*) over windows 1, 2, 5, 20
and 0 where legal, plus the expressions of docs/examples/myfactors.yaml, and saves bars, calendar and Qlib's
output (one column per expression text) under tests/fixtures/features/ (operator_bars, operator_calendar,
qlib_operators .parquet). The query starts on the calendar's first day, so the expanding forms (N = 0,
``Ref(x, 0)``, ``Delta(x, 0)``) see each instrument's whole history, as the engine defines them. Nothing here
comes from real market data.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

# run as `python scripts/make_operator_fixtures.py`: its own folder is on sys.path
import make_feature_fixtures as feature_fixtures
import numpy as np
import pandas as pd
import polars as pl

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "features"
N_DAYS = 320
SEED = 20261202
FIELDS = ("open", "high", "low", "close", "volume", "x", "y")
EXAMPLE = REPO / "docs" / "examples" / "myfactors.yaml"  # its expressions are checked here too
WINDOWS = (1, 2, 5, 20, 0)
# Run through the operator objects directly (see _direct).
DIRECT = frozenset({"Cov($x, $y, 0)"})
ROLLING = ("Mean", "Sum", "Std", "Var", "Max", "Min", "Med", "Mad", "Rank", "Count", "IdxMax", "IdxMin",
           "Slope", "Rsquare", "Resi", "WMA", "EMA")  # fmt: skip


def expressions() -> list[str]:
    """The expression texts: each operator on inputs that exercise NaN, ties, zeros, large and flat values."""
    out = ["Abs($x)", "Sign($x)", "Log($close)", "Log($volume)", "Not($x > 0)", "Not(Gt($x, $y))"]
    for op in ("Add", "Sub", "Mul", "Div", "Greater", "Less", "Gt", "Ge", "Lt", "Le", "Eq", "Ne"):
        out += [f"{op}($x, $y)", f"{op}($x, 0)"]
    out += ["Div($close, 3)", "Div(1, $y)", "Power($close, 0.5)", "Power($x, 2)", "Power($y, 3)", "Power(2, $x)"]
    out += ["Sub(0, $x)", "$close * 2 + $volume / 1000 - 1", "$x ** 2", "$x == $y", "$x != $y"]
    out += ["And(Gt($x, 0), Gt($y, 0))", "Or(Lt($x, 0), Eq($y, 0))", "($x > 0) & ($y <= 0)", "($x > 0) | ($y > 0)"]
    out += [
        "If(Gt($x, $y), $x, $y)",
        "If($x > 0, 1, -1)",
        "If($x, $y, 0)",
        "If(Ge($close, Ref($close, 1)), $volume, 0)",
    ]
    for src in ("$x", "$close"):
        for op in ROLLING:
            out += [f"{op}({src}, {n})" for n in WINDOWS]
        out += [f"Skew({src}, {n})" for n in (3, 5, 20, 0)]
        out += [f"Kurt({src}, {n})" for n in (4, 5, 20, 0)]
        out += [f"Quantile({src}, {n}, {q})" for n in WINDOWS for q in (0.2, 0.8)]
        out += [f"Ref({src}, {n})" for n in (1, 5, -1, -2, 0)]
        out += [f"Delta({src}, {n})" for n in (1, 5, -1, 0)]
    out += ["EMA($x, 0.5)", "EMA($close, 0.1)", "Std($volume, 20)", "Mean($volume, 5)", "Slope($volume, 20)"]
    out += [f"Corr($x, $y, {n})" for n in (1, 2, 5, 20)] + [f"Cov($x, $y, {n})" for n in WINDOWS]
    out += [f"Corr($close, Log($volume + 1), {n})" for n in (5, 20)] + ["Cov($close, $volume, 20)"]
    out += ["Mean($close > Ref($close, 1), 5)", "Sum(Greater($x, 0), 20)", "Rank(Abs($x), 5)"]
    out += ["Std(Mean($x, 5), 0)", "Mean(Ref($x, 0), 3)", "EMA(Delta($close, 1), 5)", "IdxMax(Ref($x, 2), 20)"]
    out += [e for e in _example_expressions() if e not in out]
    assert len(set(out)) == len(out), "duplicate expressions"
    return out


def _example_expressions() -> list[str]:
    import yaml

    sets = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return [str(text).strip() for body in sets.values() for text in body.values()]


def make_calendar() -> list[dt.date]:
    days = pd.bdate_range("2020-01-02", periods=N_DAYS + 12)
    days = days.delete([5, 40, 41, 42, 150, 260])  # a few market holidays
    return [d.date() for d in days[:N_DAYS]]


def _series(rng: np.random.Generator, n: int, price: float, vol: float, tick: float) -> dict[str, np.ndarray]:
    close = np.maximum(np.round(price * np.exp(np.cumsum(rng.normal(0, vol, n))) / tick) * tick, tick)
    volume = np.round(np.exp(rng.normal(12, 0.8, n)) / 100) * 100
    x = np.round(rng.normal(0, 1, n), 2)  # two decimals: exact ties and exact zeros now and then
    y = np.round(0.6 * x + 0.8 * rng.normal(0, 1, n), 1)
    return {"close": close, "volume": volume, "x": x, "y": y}


def _frame(name: str, first: int, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(cols["close"])
    return pd.DataFrame({"instrument": name, "t": np.arange(first, first + n), **cols})


def make_bars(calendar: list[dt.date]) -> pl.DataFrame:
    rng = np.random.default_rng(SEED)
    parts = []

    a = _series(rng, N_DAYS, 10.0, 0.02, 0.01)
    a["x"][30:42] = np.nan  # a run of NaN longer than a 5-day window
    a["x"][rng.random(N_DAYS) < 0.05] = np.nan  # scattered NaN
    a["y"][100:130] = 0.0  # a flat run of zeros
    a["volume"][[3, 4, 200]] = 0.0
    a["x"][60:75] = a["y"][60:75]  # x == y for a while (Eq, Corr of identical series)
    parts.append(_frame("SH600001", 0, a))

    b = _series(rng, N_DAYS, 25.0, 0.02, 0.01)
    b["x"][0:3] = np.nan  # NaN on the first days: the expanding forms start from NaN
    fb = _frame("SH600002", 0, b)
    parts.append(fb[~fb["t"].isin([*range(50, 66), 120, 121, 250])])  # suspended: missing rows

    c = _series(rng, N_DAYS - 120, 1000.0, 1e-6, 1e-3)  # nearly constant price, long exact-constant runs
    c["close"][40:80] = 1000.0
    c["x"][40:80] = 0.25  # constant windows: Std 0, Skew/Kurt/Corr undefined
    c["y"][40:80] = -0.5
    c["volume"][40:80] = 0.0  # a zero-volume suspension forward-filled
    parts.append(_frame("SH600003", 120, c))  # starts late

    d = _series(rng, 250, 5000.0, 0.03, 0.01)
    d["volume"] = d["volume"] * 1e4  # very large volumes
    d["x"] = d["x"] * 1e5  # large signed values
    d["y"][::7] = 0.0
    parts.append(_frame("SZ000004", 0, d))  # ends early

    e = _series(rng, 30, 4.0, 0.004, 0.01)  # short, tick-grid ties
    e["x"][10:30] = np.nan  # ends in NaN
    parts.append(_frame("SZ000005", 200, e))

    raw = pd.concat(parts, ignore_index=True).sort_values(["instrument", "t"])
    # open/high/low around close from a second stream, so the draws above stay as they were
    more = np.random.default_rng(SEED + 1)
    prev = raw.groupby("instrument")["close"].shift(1).fillna(raw["close"]).to_numpy()
    raw["open"] = np.round(prev * (1 + more.normal(0, 0.005, len(raw))), 2)
    spread = np.round(np.abs(more.normal(0, 0.01, (2, len(raw)))) * raw["close"].to_numpy(), 2)
    raw["high"] = np.maximum(raw["open"], raw["close"]) + spread[0]
    raw["low"] = np.minimum(raw["open"], raw["close"]) - spread[1]
    raw["date"] = [calendar[t] for t in raw["t"]]
    frame = pl.from_pandas(raw.drop(columns="t"))
    # float32-rounded values, as Qlib stores them
    return frame.select(
        pl.col("instrument"),
        pl.col("date").cast(pl.Date),
        *[pl.col(c).cast(pl.Float32).cast(pl.Float64) for c in FIELDS],
    ).sort(["instrument", "date"])


def write_qlib_bin(root: Path, bars: pl.DataFrame, calendar: list[dt.date]) -> None:
    """The fixture market as a Qlib binary directory (the feature fixtures' writer, over this market's fields)."""
    feature_fixtures.write_qlib_bin(root, bars, calendar, tuple(FIELDS))


def _direct(exprs: list[str], instruments: list[str], calendar: list[dt.date]) -> pl.DataFrame:
    """Qlib's own operator objects loaded over each instrument's whole span, for the expressions that
    ``D.features`` cannot run: PairRolling's extended window for N = 0 is -inf, so the query start becomes inf
    ("Invalid index range"), although the operator itself computes the expanding value."""
    from qlib.data.data import ExpressionD

    frames = []
    for inst in instruments:
        cols = {}
        for text in exprs:
            series = ExpressionD.get_expression_instance(text).load(inst, 0, len(calendar) - 1, "day")
            cols[text] = series.astype("float32")
        df = pd.DataFrame(cols)
        frames.append(
            pl.DataFrame(
                {"instrument": inst, "date": [calendar[i] for i in df.index], **{c: df[c].to_numpy() for c in exprs}}
            )
        )
    return pl.concat(frames)


def qlib_output(root: Path, instruments: list[str], calendar: list[dt.date], exprs: list[str]) -> pl.DataFrame:
    import qlib
    from qlib.data import D

    qlib.init(provider_uri=str(root), region="cn", kernels=1)
    batch = [e for e in exprs if e not in DIRECT]
    df = D.features(instruments, batch, start_time=str(calendar[0]), end_time=str(calendar[-1]), freq="day")
    df.columns = batch
    df = df.astype("float32").reset_index()
    frame = pl.from_pandas(df).rename({"datetime": "date"}).with_columns(pl.col("date").cast(pl.Date))
    direct = _direct([e for e in exprs if e in DIRECT], instruments, calendar)
    frame = frame.join(direct.with_columns(pl.col("date").cast(pl.Date)), on=["instrument", "date"], how="left")
    # Qlib's NaN as null (pl.from_pandas does so for the batch; the direct columns alike), +-inf kept
    return frame.select("instrument", "date", *[pl.col(e).fill_nan(None) for e in exprs]).sort(["instrument", "date"])


def main() -> int:
    calendar = make_calendar()
    bars = make_bars(calendar)
    exprs = expressions()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "qlib_data"
        write_qlib_bin(root, bars, calendar)
        result = qlib_output(root, sorted(bars["instrument"].unique().to_list()), calendar, exprs)
    OUT.mkdir(parents=True, exist_ok=True)
    bars.write_parquet(OUT / "operator_bars.parquet", compression="zstd", compression_level=19)
    pl.DataFrame({"date": calendar}).write_parquet(OUT / "operator_calendar.parquet")
    # column names are the expression texts
    result.write_parquet(OUT / "qlib_operators.parquet", compression="zstd", compression_level=19)
    for path in sorted(OUT.glob("*operator*.parquet")):
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
    print(f"bars: {bars.height} rows, {bars['instrument'].n_unique()} instruments; {len(exprs)} expressions,",
          f"{result.height} rows")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
