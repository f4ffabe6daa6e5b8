"""The embedded default: a deterministic synthetic stock market.

It has what real daily data has and the pipeline must cope with: a trading calendar with holidays, listings
and delistings, a universe whose membership changes twice a year, suspended days (no bar), limit-up and
limit-down days (``change`` capped at ±10%), adjustment factors that jump on splits (prices adjusted, raw
price = price / factor), volumes, a VWAP, and a benchmark index.

It also carries a planted, learnable cross-sectional signal, so that the models can show a real IC:

* short-term reversal: the idiosyncratic return of day t+2 contains ``-KAPPA`` times the sum of the stock's
  idiosyncratic returns of days t-4..t;
* candle shape: the lower shadow of day t's bar (how far the low sits under min(open, close)) carries
  ``GAMMA`` times a standard-normal draw that also enters the idiosyncratic return of day t+2.

Both are visible in the features of day t and predict the label of day t
(``close[t+2] / close[t+1] - 1``), and in nothing later.

Every instrument belongs to one sector (``min(10, max(2, instruments // 8))`` sectors of equal size, 10 for the
default 200) and about 30% also to one of three themes, all exposed by ``concepts()`` (``sector:<name>``,
``theme:<name>``). A sector's members share a factor return (volatility ``SECTOR_VOL`` times a loading in
0.7..1.3), a theme's members a smaller one (``THEME_VOL``). On top, a planted sector-level reversal for HIST's
concept module to find:

* the return of day t+2 of every member of sector k contains ``-LAMBDA * D[k, t]``, where ``D[k, t]`` is the mean
  day-t return of the sector's trading members minus the mean over every trading instrument (both limit-capped:
  what day t's ``change`` shows, the latter being the index's change).

A per-stock model sees D only through the stock's own return (the sector factor in it, diluted by the stock's
own noise); a model that pools the sector's members sees it whole.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from warehouse.sources.base import (
    MEMBERSHIP_SCHEMA,
    BarSource,
    BarsRead,
    SourceError,
    empty_bars,
    finalize_bars,
)

KAPPA = 0.06
GAMMA = 0.10
LAMBDA = 0.25
SECTOR_VOL = 0.008
THEME_VOL = 0.004
THEME_SHARE = 0.3
LIMIT = 0.10
BENCHMARK = "SYNIDX"
SECTORS = ("energy", "materials", "industrials", "consumer", "staples", "health", "financials", "tech", "telecom",
           "utilities")  # fmt: skip
THEMES = ("ai", "electric_vehicles", "exporters")


@dataclass(frozen=True)
class SyntheticSpec:
    seed: int = 7
    instruments: int = 200
    start: dt.date = dt.date(2019, 1, 1)
    end: dt.date = dt.date(2022, 12, 31)
    core_size: int = 100

    @classmethod
    def parse(cls, text: str) -> SyntheticSpec:
        """``seed=7,instruments=200,start=2019-01-01,end=2022-12-31,core_size=100`` (any subset)."""
        spec = cls()
        if not text:
            return spec
        values: dict[str, object] = {}
        for part in text.split(","):
            if "=" not in part:
                raise SourceError(f"synthetic source option {part!r} is not key=value")
            key, value = (s.strip() for s in part.split("=", 1))
            if key in ("seed", "instruments", "core_size"):
                values[key] = int(value)
            elif key in ("start", "end"):
                values[key] = dt.date.fromisoformat(value)
            else:
                raise SourceError(
                    f"unknown synthetic source option {key!r}; valid: seed, instruments, start, end, core_size"
                )
        spec = cls(**{**spec.__dict__, **values})
        if spec.instruments < 2 or spec.end <= spec.start:
            raise SourceError(f"synthetic source needs at least 2 instruments and end > start, got {spec}")
        return spec


def synthetic_calendar(start: dt.date, end: dt.date) -> list[dt.date]:
    """Weekdays minus New Year's day, a spring-festival week and an October national-holiday week."""
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday
    dates = [d.item() for d in days[weekday < 5]]
    closed: set[dt.date] = set()
    for year in range(start.year, end.year + 1):
        closed.add(dt.date(year, 1, 1))
        feb1 = dt.date(year, 2, 1)
        first_monday = feb1 + dt.timedelta(days=(7 - feb1.weekday()) % 7)
        closed.update(first_monday + dt.timedelta(days=i) for i in range(5))
        closed.update(dt.date(year, 10, d) for d in range(1, 8))
    return [d for d in dates if d not in closed]


class SyntheticSource(BarSource):
    def __init__(self, spec: SyntheticSpec | None = None, on_bad_file: str = "fail") -> None:
        self.spec = spec or SyntheticSpec()
        self.uri = "synthetic" if spec in (None, SyntheticSpec()) else f"synthetic:{self.spec}"
        self.on_bad_file = on_bad_file
        self._calendar = synthetic_calendar(self.spec.start, self.spec.end)
        self._bars, self._membership, self._concepts = _generate(self.spec, self._calendar)

    def calendar(self) -> list[dt.date]:
        return list(self._calendar)

    def universes(self) -> list[str]:
        return ["all", "core"]

    def membership(self, universe: str | None) -> pl.DataFrame:
        self.check_universe(universe)
        return self._membership[universe or "all"]

    def default_benchmark(self) -> str:
        return BENCHMARK

    def concepts_origin(self) -> str:
        k = n_sectors(self.spec.instruments)
        return f"synthetic sectors: {k} sectors and {len(THEMES)} themes of the synthetic market, seed {self.spec.seed}"

    def concepts(self) -> pl.DataFrame:
        """Each instrument's sector, and a theme for about 30% of them (see the module docstring)."""
        return self._concepts

    def read_bars(
        self, instruments: list[str] | None, start: dt.date | None = None, end: dt.date | None = None
    ) -> BarsRead:
        bars = self._bars
        if instruments is not None:
            bars = bars.filter(pl.col("instrument").is_in([i.upper() for i in instruments]))
        if start is not None:
            bars = bars.filter(pl.col("date") >= start)
        if end is not None:
            bars = bars.filter(pl.col("date") <= end)
        return BarsRead(bars if bars.height else empty_bars())


def n_sectors(instruments: int) -> int:
    return min(len(SECTORS), max(2, instruments // 8))


def _generate(
    spec: SyntheticSpec, calendar: list[dt.date]
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame], pl.DataFrame]:
    rng = np.random.default_rng(spec.seed)
    T, N = len(calendar), spec.instruments
    names = np.array([f"SYN{i:04d}" for i in range(1, N + 1)])

    # Listing spans: most names trade from the start, some list later, some delist.
    first = np.where(rng.random(N) < 0.7, 0, rng.integers(0, int(T * 0.6), N))
    last = np.where(rng.random(N) < 0.1, rng.integers(int(T * 0.7), T, N), T - 1)
    last = np.maximum(last, first + 80).clip(max=T - 1)
    t_idx = np.arange(T)[:, None]
    listed = (t_idx >= first) & (t_idx <= last)

    # Suspension spells: no bar at all on those days.
    suspended = np.zeros((T, N), dtype=bool)
    for _ in range(3):
        has = rng.random(N) < 0.3
        begin = rng.integers(0, T, N)
        length = rng.integers(1, 20, N)
        suspended |= has & (t_idx >= begin) & (t_idx < begin + length)
    trading = listed & ~suspended

    # Returns: market beta, sector and theme factors, an idiosyncratic part carrying the stock-level signals and
    # the sector-level reversal. Sectors and themes draw from their own stream, so every other draw is the seed's.
    beta = rng.uniform(0.6, 1.4, N)
    sigma = rng.uniform(0.012, 0.025, N)
    market = rng.normal(0.0003, 0.011, T)
    shadow_signal = rng.normal(0.0, 1.0, (T, N))
    noise = rng.normal(0.0, 1.0, (T, N))
    jumps = (rng.random((T, N)) < 0.004) * rng.normal(0.0, 0.09, (T, N))
    sector, theme, common = _sector_factors(np.random.default_rng([spec.seed, 1]), T, N)
    common += beta * market[:, None] + jumps
    idio = np.zeros((T, N))
    ret = np.zeros((T, N))
    deviation = np.zeros((T, n_sectors(N)))  # D[k, t]: sector mean minus market mean of day t's capped returns
    for t in range(T):
        alpha = np.zeros(N)
        if t >= 2:
            alpha -= KAPPA * idio[max(0, t - 6) : t - 1].sum(axis=0)
            alpha += GAMMA * sigma * shadow_signal[t - 2]
        idio[t] = alpha + sigma * noise[t]
        ret[t] = common[t] + idio[t] - (LAMBDA * deviation[t - 2, sector] if t >= 2 else 0.0)
        deviation[t] = _sector_deviation(np.clip(ret[t], -LIMIT, LIMIT), trading[t], sector)

    # Close-to-close returns between trading days accumulate over suspensions; limits cap each move.
    log_ret = np.log1p(np.clip(ret, -0.5, 0.5))
    price = np.full((T, N), np.nan)
    change = np.full((T, N), np.nan)
    level = rng.uniform(5.0, 80.0, N)
    pending = np.zeros(N)
    prev_close = np.full(N, np.nan)
    for t in range(T):
        pending += log_ret[t]
        on = trading[t]
        move = np.expm1(pending)
        capped = np.clip(move, -LIMIT, LIMIT)
        new = np.where(np.isnan(prev_close), level, prev_close * (1 + capped))
        new = np.round(new, 2).clip(min=0.01)  # a tick grid, like real quotes (ties happen)
        price[t] = np.where(on, new, np.nan)
        change[t] = np.where(on & ~np.isnan(prev_close), new / prev_close - 1, np.nan)
        prev_close = np.where(on, new, prev_close)
        pending = np.where(on, 0.0, pending)

    prev = _ffill_shift(price)
    gap = rng.normal(0.0, 0.3, (T, N)) * sigma
    open_ = np.where(np.isnan(prev), price, prev * np.exp(gap))
    body_hi, body_lo = np.maximum(open_, price), np.minimum(open_, price)
    upper = np.abs(rng.normal(0.0, 0.5, (T, N))) * sigma * price
    lower = 0.5 * np.exp(0.4 * shadow_signal) * sigma * price
    cap_hi = np.where(np.isnan(prev), np.inf, prev * (1 + LIMIT))
    cap_lo = np.where(np.isnan(prev), 0.01, prev * (1 - LIMIT))
    high = np.minimum(body_hi + upper, np.maximum(cap_hi, body_hi))
    low = np.maximum(body_lo - lower, np.minimum(cap_lo, body_lo)).clip(min=0.01)
    open_ = np.clip(np.round(open_, 2), low, high)
    high, low = np.round(high, 2), np.round(low, 2)
    high, low = np.maximum(high, np.maximum(open_, price)), np.minimum(low, np.minimum(open_, price))
    vwap = (high + low + 2 * price) / 4

    # Splits: the raw price drops by the ratio and the factor rises by it; adjusted prices stay smooth.
    factor = np.ones((T, N))
    for _ in range(2):
        has = rng.random(N) < 0.2
        when = rng.integers(0, T, N)
        ratio = rng.choice([1.5, 2.0, 1.2], N)
        factor *= np.where(has & (t_idx >= when), ratio, 1.0)
    base_volume = rng.lognormal(13.0, 1.0, N)
    raw_volume = base_volume * np.exp(rng.normal(0.0, 0.3, (T, N))) * (1 + 20 * np.abs(ret))
    volume = np.round(raw_volume / 100) * 100 / factor  # adjusted volume, as in Qlib's data

    cal = np.array(calendar, dtype="datetime64[D]")
    ti, ni = np.nonzero(trading)
    stocks = pl.DataFrame(
        {
            "instrument": names[ni],
            "date": cal[ti],
            "open": open_[ti, ni],
            "high": high[ti, ni],
            "low": low[ti, ni],
            "close": price[ti, ni],
            "volume": volume[ti, ni],
            "factor": factor[ti, ni],
            "change": change[ti, ni],
            "vwap": vwap[ti, ni],
        }
    )
    index = _benchmark(price, trading, volume, cal)
    bars = finalize_bars(pl.concat([stocks, index], how="vertical_relaxed"))

    spans = pl.DataFrame(
        {"instrument": names, "start_date": cal[first], "end_date": cal[last]}, schema=MEMBERSHIP_SCHEMA
    )
    core = _core_membership(price, volume, listed, names, cal, spec.core_size)
    return bars, {"all": spans, "core": core}, _concept_rows(names, sector, theme)


def _sector_factors(rng: np.random.Generator, T: int, N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each instrument's sector (equal sizes, shuffled), theme (-1: none) and the [T, N] factor returns."""
    k = n_sectors(N)
    sector = rng.permutation(np.arange(N) % k)
    loading = rng.uniform(0.7, 1.3, N)
    theme = np.where(rng.random(N) < THEME_SHARE, rng.integers(0, len(THEMES), N), -1)
    sector_ret = rng.normal(0.0, SECTOR_VOL, (T, k))
    theme_ret = np.hstack([rng.normal(0.0, THEME_VOL, (T, len(THEMES))), np.zeros((T, 1))])  # column -1: none
    return sector, theme, loading * sector_ret[:, sector] + theme_ret[:, theme]


def _sector_deviation(ret: np.ndarray, on: np.ndarray, sector: np.ndarray) -> np.ndarray:
    """Per sector: the mean of ``ret`` over its members that are ``on`` minus the mean over all that are (0 for
    a sector with none on)."""
    k = int(sector.max()) + 1
    if not on.any():
        return np.zeros(k)
    count = np.bincount(sector[on], minlength=k)
    total = np.bincount(sector[on], weights=ret[on], minlength=k)
    return np.where(count > 0, total / np.maximum(count, 1) - ret[on].mean(), 0.0)


def _concept_rows(names: np.ndarray, sector: np.ndarray, theme: np.ndarray) -> pl.DataFrame:
    sectors = pl.DataFrame({"instrument": names, "concept": np.array([f"sector:{s}" for s in SECTORS])[sector]})
    has = theme >= 0
    themes = pl.DataFrame({"instrument": names[has], "concept": np.array([f"theme:{t}" for t in THEMES])[theme[has]]})
    return pl.concat([sectors, themes]).sort("instrument", "concept")


def _ffill_shift(values: np.ndarray) -> np.ndarray:
    """Previous available value in each column (NaN before the first)."""
    T = values.shape[0]
    idx = np.where(~np.isnan(values), np.arange(T)[:, None], -1)
    idx = np.maximum.accumulate(idx, axis=0)
    shifted = np.vstack([np.full((1, values.shape[1]), -1), idx[:-1]])
    out = np.take_along_axis(values, shifted.clip(min=0), axis=0)
    return np.where(shifted >= 0, out, np.nan)


def _benchmark(price: np.ndarray, trading: np.ndarray, volume: np.ndarray, cal: np.ndarray) -> pl.DataFrame:
    """An equal-weight index of the traded names, starting at 1000."""
    prev = _ffill_shift(price)
    rets = np.where(trading & ~np.isnan(prev), price / prev - 1, np.nan)
    count = (~np.isnan(rets)).sum(axis=1)
    mean = np.where(count > 0, np.nansum(rets, axis=1) / np.maximum(count, 1), 0.0)
    level = 1000 * np.cumprod(1 + mean)
    prev_level = np.concatenate([[1000.0], level[:-1]])
    return pl.DataFrame(
        {
            "instrument": BENCHMARK,
            "date": cal,
            "open": prev_level,
            "high": np.maximum(prev_level, level),
            "low": np.minimum(prev_level, level),
            "close": level,
            "volume": np.nansum(np.where(trading, volume, 0.0), axis=1),
            "factor": 1.0,
            "change": level / prev_level - 1,
            "vwap": (prev_level + level) / 2,
        }
    )


def _core_membership(
    price: np.ndarray, volume: np.ndarray, listed: np.ndarray, names: np.ndarray, cal: np.ndarray, size: int
) -> pl.DataFrame:
    """Twice a year, the `size` listed names with the largest trailing traded value join the universe."""
    T = len(cal)
    traded = np.nan_to_num(price * volume)
    months = cal.astype("datetime64[M]").astype(int)
    rebalance = [0] + [t for t in range(1, T) if months[t] != months[t - 1] and months[t] % 6 == 0]
    ends = rebalance[1:] + [T]
    rows = []
    for begin, stop in zip(rebalance, ends, strict=True):
        lookback = traded[max(0, begin - 120) : begin + 1].mean(axis=0)
        alive = listed[begin] & listed[stop - 1]
        ranked = np.argsort(-np.where(alive, lookback, -1.0), kind="stable")[: min(size, int(alive.sum()))]
        rows.extend((names[j], cal[begin].item(), cal[stop - 1].item()) for j in sorted(ranked))
    frame = pl.DataFrame(rows, schema=MEMBERSHIP_SCHEMA, orient="row").sort(["instrument", "start_date"])
    # Back-to-back ranges merge, so a name kept across a rebalance has one range.
    return _merge_ranges(frame, cal)


def _merge_ranges(frame: pl.DataFrame, cal: np.ndarray) -> pl.DataFrame:
    pos = {d.item(): i for i, d in enumerate(cal)}
    out = []
    for (inst,), group in frame.group_by(["instrument"], maintain_order=True):
        cur_s = cur_e = None
        for s, e in group.select("start_date", "end_date").iter_rows():
            if cur_e is not None and pos[s] == pos[cur_e] + 1:
                cur_e = e
                continue
            if cur_s is not None:
                out.append((inst, cur_s, cur_e))
            cur_s, cur_e = s, e
        out.append((inst, cur_s, cur_e))
    return pl.DataFrame(out, schema=MEMBERSHIP_SCHEMA, orient="row").sort(["instrument", "start_date"])
