"""Dense day x instrument arrays of what the backtest needs from the bars, with Qlib's exchange rules.

Qlib's ``Exchange`` reads ``$close, $change, $factor`` and the deal price for every instrument of the market
(its default ``codes="all"``) over the backtest dates, and derives:

* suspended: the close is missing (a missing row counts the same). A forward-filled row with volume 0 is NOT
  suspended: it trades at the repeated price.
* limit_buy = ``change >= threshold`` or suspended; limit_sell = ``change <= -threshold`` or suspended. The
  comparison is made in float32, the precision of Qlib's data files (so a change of exactly float32(0.095)
  is at the limit).
* the deal price falls back to the close when it is missing or <= 1e-8.
* rounding to trade units is disabled for the whole run when any row with a close lacks its factor.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class MarketPanel:
    """Arrays ``[n_days, n_instruments]`` over ``dates`` (trading days) and ``instruments`` (sorted)."""

    dates: np.ndarray  # datetime64[D]
    instruments: np.ndarray  # str, sorted ascending
    close: np.ndarray  # float64, NaN where suspended or no row
    deal_price: np.ndarray  # float64, the close where the chosen price is unusable
    factor: np.ndarray  # float64
    suspended: np.ndarray  # bool
    limit_buy: np.ndarray  # bool, includes suspended
    limit_sell: np.ndarray  # bool, includes suspended
    round_to_unit: bool  # False when some traded row lacks a factor (Qlib's adjusted-price mode)


def lookup(sorted_keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each value in ``sorted_keys`` and whether it is there."""
    pos = np.searchsorted(sorted_keys, values)
    found = pos < sorted_keys.size
    found[found] = sorted_keys[pos[found]] == values[found]
    return pos, found


def _float_column(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).fill_null(math.nan).to_numpy()


def build_panel(
    bars: pl.DataFrame,
    dates: Sequence[dt.date] | np.ndarray,
    instruments: Sequence[str] | np.ndarray,
    deal_price: str = "close",
    limit_threshold: float | None = 0.095,
) -> MarketPanel:
    """Scatter ``bars`` rows into dense arrays for the given dates and (sorted, unique) instruments."""
    required = ["instrument", "date", "close"]
    if limit_threshold is not None:
        required.append("change")
    if deal_price not in bars.columns:
        raise ValueError(f"deal_price {deal_price!r} is not a column of bars; columns are {bars.columns}")
    missing = [c for c in required if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lacks columns {missing} needed by the backtest; columns are {bars.columns}")
    day_index = np.asarray(dates, dtype="datetime64[D]")
    inst_index = np.asarray(instruments, dtype=object)
    n_days, n_inst = day_index.size, inst_index.size

    rows = bars.filter(pl.col("date").is_between(day_index[0].item(), day_index[-1].item()))
    row_day, day_found = lookup(day_index, rows["date"].to_numpy().astype("datetime64[D]"))
    row_inst, inst_found = lookup(inst_index.astype(str), rows["instrument"].to_numpy().astype(str))
    keep = day_found & inst_found
    d, i = row_day[keep], row_inst[keep]

    def scatter(name: str | None) -> np.ndarray:
        out = np.full((n_days, n_inst), np.nan)
        if name is not None and name in rows.columns:
            out[d, i] = _float_column(rows, name)[keep]
        return out

    close = scatter("close")
    factor = scatter("factor")
    suspended = np.isnan(close)
    price = scatter(deal_price)
    unusable = np.isnan(price) | (price <= 1e-8)
    price = np.where(unusable, close, price)
    if limit_threshold is None:
        limit_buy = suspended.copy()
        limit_sell = suspended.copy()
    else:
        change32 = scatter("change").astype(np.float32)
        threshold32 = np.float32(limit_threshold)
        with np.errstate(invalid="ignore"):
            limit_buy = (change32 >= threshold32) | suspended
            limit_sell = (change32 <= -threshold32) | suspended
    round_to_unit = not bool(np.any(np.isnan(factor) & ~suspended))
    return MarketPanel(
        dates=day_index,
        instruments=inst_index,
        close=close,
        deal_price=price,
        factor=factor,
        suspended=suspended,
        limit_buy=limit_buy,
        limit_sell=limit_sell,
        round_to_unit=round_to_unit,
    )


def round_to_trade_unit(amount: np.ndarray, factor: np.ndarray, trade_unit: int) -> np.ndarray:
    """Adjusted amount rounded down to whole lots of ``trade_unit`` REAL shares (real = adjusted * factor).

    The 0.1 share of slack guards against ``amount * factor`` landing just under a whole lot by float error.
    """
    return np.floor_divide(amount * factor + 0.1, trade_unit) * trade_unit / factor


def calendar_from_bars(bars: pl.DataFrame) -> np.ndarray:
    """The trading days the bars cover, as sorted datetime64[D]."""
    return np.unique(bars["date"].to_numpy().astype("datetime64[D]"))


def benchmark_returns_from_bars(
    bars: pl.DataFrame, instrument: str, calendar: Sequence[dt.date] | np.ndarray | None = None
) -> pl.DataFrame:
    """date, bench: the benchmark's ``close / previous close - 1`` as Qlib computes ``$close/Ref($close,1)-1``.

    Days are those of ``calendar`` (default: every date in ``bars``) between the benchmark's first and last row;
    the previous close is the previous calendar day's, so a missing day yields NaN on it and on the next day,
    and NaN becomes 0 as in Qlib's report. The arithmetic is float32 like Qlib's expression engine.
    """
    name = instrument.upper()
    rows = bars.filter(pl.col("instrument") == name).sort("date")
    if rows.is_empty():
        known = bars["instrument"].unique().sort()
        sample = ", ".join(known.head(10).to_list())
        raise ValueError(f"benchmark instrument {name!r} has no bars (instruments include: {sample}, ...)")
    days = calendar_from_bars(bars) if calendar is None else np.asarray(calendar, dtype="datetime64[D]")
    row_days = rows["date"].to_numpy().astype("datetime64[D]")
    days = days[(days >= row_days[0]) & (days <= row_days[-1])]
    close = np.full(days.size, np.nan, dtype=np.float32)
    pos, ok = lookup(days, row_days)
    close[pos[ok]] = _float_column(rows, "close")[ok].astype(np.float32)
    previous = np.concatenate([[np.float32(np.nan)], close[:-1]]).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = (close / previous - np.float32(1)).astype(np.float32)
    bench = change.astype(np.float64)
    bench[np.isnan(bench)] = 0.0
    return pl.DataFrame({"date": days, "bench": bench}).with_columns(pl.col("date").cast(pl.Date))
