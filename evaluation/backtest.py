"""Qlib's daily TopkDropout backtest (``PortAnaRecord`` with ``TopkDropoutStrategy`` and a daily
``SimulatorExecutor``), reproduced on polars/numpy inputs.

Each trading day t, in Qlib's order:

1. the strategy reads the scores dated on the previous trading day (no score rows that day: no orders) and
   picks the names to sell and buy (``topk_dropout.select``);
2. sells go first: a held name in the sell list is sold whole when it is tradable (not suspended, not at the
   limit that blocks it) and has been held ``hold_thresh`` days; the proceeds net of fees join the cash;
3. each buy gets ``cash * risk_degree / len(buy)`` (len(buy) counts untradable names too, whose share stays in
   cash), converted to shares at the deal price and rounded down to whole lots of real shares;
4. at the close, held names are valued at the close (a suspended one keeps its last price) and every holding
   count goes up by one;
5. the report row: ``return = (value change + fees) / previous value`` (gross of fees),
   ``cost = fees / previous value``, ``turnover = traded value / previous value``, and the benchmark return.

Risk metrics are Qlib's ``risk_analysis`` of ``return - bench`` and ``return - bench - cost``.

The window [start_date, end_date] is Qlib's ``backtest(start_time, end_time)``: every trading day in it is a report
row. Day 1 reads the scores of the trading day before start_date, as Qlib's ``get_step_time(shift=1)`` does:

* scores that start on start_date (Qlib's workflow: predictions and backtest both cover the test segment): day 1
  has no score to read, trades nothing and is still in the report, with return 0 and that day's benchmark return,
  so its excess return is ``-bench``;
* scores that start earlier: day 1 trades on the previous day's scores.

The last day trades on the scores of the day before it; scores dated end_date itself are never read. Qlib also
needs one calendar day after end_date to exist (its step's right boundary); this backtest does not.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from evaluation.ledger import Rounder, execute_buys, execute_sells
from evaluation.market import MarketPanel, build_panel, calendar_from_bars, lookup, round_to_trade_unit
from evaluation.risk import risk_analysis
from evaluation.topk_dropout import select

# The window fields of BacktestConfig: set from the test segment (assets) or --start / --end (CLI).
BACKTEST_WINDOW = ("start_date", "end_date")


@dataclass(frozen=True)
class BacktestConfig:
    """Strategy and exchange settings; the defaults are Qlib's benchmark workflow (CSI300, TopkDropout 50/5)."""

    topk: int = field(default=50, metadata={"help": "names held"})
    n_drop: int = field(default=5, metadata={"help": "names replaced each day"})
    hold_thresh: int = field(default=1, metadata={"help": "days a name is held before it may be sold"})
    only_tradable: bool = field(default=False, metadata={"help": "rank only names tradable on the day"})
    forbid_all_trade_at_limit: bool = field(
        default=True, metadata={"help": "no buy at the up limit and no sell at the down limit"}
    )
    risk_degree: float = field(default=0.95, metadata={"help": "fraction of the account invested"})
    account: float = field(default=100_000_000.0, metadata={"help": "initial cash"})
    deal_price: str = field(default="close", metadata={"help": "bars column trades are priced at"})
    limit_threshold: float | None = field(
        default=0.095, metadata={"help": "price-limit move that blocks trading (none: no limit)"}
    )
    open_cost: float = field(default=0.0005, metadata={"help": "cost rate of a buy"})
    close_cost: float = field(default=0.0015, metadata={"help": "cost rate of a sell"})
    min_cost: float = field(default=5.0, metadata={"help": "minimum cost of a trade"})
    trade_unit: int | None = field(default=100, metadata={"help": "shares per lot (none: fractional shares)"})
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"BacktestConfig.{name}={getattr(self, name)!r}: {why}")

        for name in ("topk", "n_drop", "hold_thresh"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                fail(name, "must be an integer")
        if self.topk < 1:
            fail("topk", "must be at least 1")
        if self.n_drop < 1:
            fail("n_drop", "must be at least 1 (Qlib's list[-0:] would drop the whole portfolio every day)")
        if self.hold_thresh < 0:
            fail("hold_thresh", "must be >= 0")
        for name in ("only_tradable", "forbid_all_trade_at_limit"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "must be true or false")
        for name in ("risk_degree", "account", "open_cost", "close_cost", "min_cost"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                fail(name, "must be a finite number")
        if not 0 < self.risk_degree <= 1:
            fail("risk_degree", "must be in (0, 1]")
        if self.account <= 0:
            fail("account", "must be positive")
        for name in ("open_cost", "close_cost", "min_cost"):
            if getattr(self, name) < 0:
                fail(name, "must be >= 0")
        if not isinstance(self.deal_price, str) or not self.deal_price.strip("$"):
            fail("deal_price", "must name a bars column such as 'close' or 'open'")
        if self.limit_threshold is not None and (
            isinstance(self.limit_threshold, bool)
            or not isinstance(self.limit_threshold, int | float)
            or not 0 < self.limit_threshold < 1
        ):
            fail("limit_threshold", "must be None or a fraction in (0, 1) such as 0.095")
        if self.trade_unit is not None and (
            not isinstance(self.trade_unit, int) or isinstance(self.trade_unit, bool) or self.trade_unit < 1
        ):
            fail("trade_unit", "must be None or a positive integer number of shares")
        for name in ("start_date", "end_date"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dt.date):
                fail(name, "must be a date or None")
        if self.start_date and self.end_date and self.start_date > self.end_date:
            fail("end_date", f"is before start_date {self.start_date}")

    @property
    def price_column(self) -> str:
        return self.deal_price.lstrip("$")


@dataclass
class BacktestResult:
    daily: pl.DataFrame  # one row per trading day, see run_backtest
    metrics: dict[str, dict[str, float]]  # risk analysis of the excess returns without and with cost
    trades: pl.DataFrame  # date, instrument, side, amount, price, value, cost
    positions: pl.DataFrame  # end-of-day holdings: date, instrument, amount, price, count
    config: BacktestConfig


def _score_panel(scores: pl.DataFrame, dates: np.ndarray, instruments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    missing = [c for c in ("instrument", "date", "score") if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lacks columns {missing}; columns are {scores.columns}")
    rows = scores.filter(pl.col("date").is_between(dates[0].item(), dates[-1].item()))
    d, d_ok = lookup(dates, rows["date"].to_numpy().astype("datetime64[D]"))
    i, i_ok = lookup(instruments.astype(str), rows["instrument"].to_numpy().astype(str))
    ok = d_ok & i_ok
    score = np.full((dates.size, instruments.size), np.nan)
    present = np.zeros((dates.size, instruments.size), dtype=bool)
    score[d[ok], i[ok]] = rows["score"].cast(pl.Float64).fill_null(math.nan).to_numpy()[ok]
    present[d[ok], i[ok]] = True
    return score, present


def _trade_days(calendar: np.ndarray, scores: pl.DataFrame, config: BacktestConfig) -> tuple[int, int]:
    """Index range [first, last] of the report's trading days: those in [start_date, end_date]. A date left None
    follows PortAnaRecord's rule for a backtest config without start_time / end_time: the first score date, and
    the trading day before the last score date. (Qlib's benchmark workflows set both to the test segment, which is
    what ``workflow.evaluation.evaluate_backtest`` does.)"""
    if config.start_date is not None:
        first = int(np.searchsorted(calendar, np.datetime64(config.start_date, "D"), "left"))
    else:
        first = int(np.searchsorted(calendar, np.datetime64(scores["date"].min(), "D"), "left"))
    if config.end_date is not None:
        last = int(np.searchsorted(calendar, np.datetime64(config.end_date, "D"), "right")) - 1
    else:
        last = int(np.searchsorted(calendar, np.datetime64(scores["date"].max(), "D"), "left")) - 1
    if first > last or first >= calendar.size:
        raise ValueError(
            f"no trading day between start_date={config.start_date or scores['date'].min()} and "
            f"end_date={config.end_date or 'the day before the last score date'} in the calendar "
            f"({calendar[0]}..{calendar[-1]})"
        )
    return first, last


def _bench_for(days: np.ndarray, benchmark_returns: pl.DataFrame | None) -> np.ndarray:
    if benchmark_returns is None:
        return np.zeros(days.size)
    if not {"date", "bench"} <= set(benchmark_returns.columns):
        raise ValueError(f"benchmark_returns needs columns date, bench; got {benchmark_returns.columns}")
    frame = benchmark_returns.sort("date")
    pos, ok = lookup(days, frame["date"].to_numpy().astype("datetime64[D]"))
    bench = np.zeros(days.size)
    bench[pos[ok]] = frame["bench"].cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()[ok]
    # Qlib compounds the day's benchmark returns as prod(1 + r) - 1, which rounds like this for one day
    return (bench + 1.0) - 1.0


@dataclass
class _Book:
    """The account between days."""

    cash: float
    held: np.ndarray  # bool
    amount: np.ndarray  # adjusted shares
    price: np.ndarray  # last valuation price
    count: np.ndarray  # days held
    total_cost: float = 0.0
    total_turnover: float = 0.0


def run_backtest(
    scores: pl.DataFrame,
    bars: pl.DataFrame,
    benchmark_returns: pl.DataFrame | None,
    config: BacktestConfig | None = None,
    calendar: Sequence[dt.date] | np.ndarray | None = None,
) -> BacktestResult:
    """Run the backtest.

    ``scores``: instrument, date, score (the score of day t-1 drives the trades of day t; on the first day, those
    of the trading day before ``config.start_date`` if there are any, else no trade). ``bars``: instrument,
    date, close, change, factor (+ the deal price column) for EVERY instrument that may be traded, over the
    backtest days. ``benchmark_returns``: date, bench (None: a zero benchmark); build it with
    ``benchmark_returns_from_bars`` from bars that start before the backtest so its first day has a previous
    close. ``calendar``: trading days (default: the dates present in ``bars``); scores dated on other days are
    never read (check them first with ``scores_file.validate_scores``).

    ``daily`` columns: date, account (cash + holdings), return, total_turnover, turnover, total_cost, cost,
    value (holdings only, as Qlib names it), cash, bench, n_holdings, excess_return_without_cost,
    excess_return_with_cost.
    """
    config = config or BacktestConfig()
    if scores.is_empty():
        raise ValueError("scores is empty: nothing to backtest")
    cal = calendar_from_bars(bars) if calendar is None else np.unique(np.asarray(calendar, dtype="datetime64[D]"))
    first, last = _trade_days(cal, scores, config)
    lo = max(first - 1, 0)  # the day before the first trading day carries its scores
    span = cal[lo : last + 1]
    offset = first - lo
    instruments = np.array(
        sorted(set(bars["instrument"].unique().to_list()) | set(scores["instrument"].unique().to_list())),
        dtype=object,
    )
    panel = build_panel(bars, span, instruments, config.price_column, config.limit_threshold)
    score, present = _score_panel(scores, span, instruments)
    days = span[offset:]
    bench = _bench_for(days, benchmark_returns)
    return _simulate(panel, score, present, offset, bench, config)


def _simulate(
    panel: MarketPanel,
    score: np.ndarray,
    present: np.ndarray,
    offset: int,
    bench: np.ndarray,
    config: BacktestConfig,
) -> BacktestResult:
    n_inst = panel.instruments.size
    book = _Book(
        cash=float(config.account),
        held=np.zeros(n_inst, dtype=bool),
        amount=np.zeros(n_inst),
        price=np.full(n_inst, np.nan),
        count=np.zeros(n_inst, dtype=np.int64),
    )
    use_units = panel.round_to_unit and config.trade_unit is not None
    unit = config.trade_unit or 1

    def rounder(amount: np.ndarray, factor: np.ndarray) -> np.ndarray:
        return round_to_trade_unit(amount, factor, unit) if use_units else np.asarray(amount, dtype=np.float64)

    blocked_any = panel.limit_buy | panel.limit_sell  # suspended is in both
    sell_blocked = blocked_any if config.forbid_all_trade_at_limit else panel.limit_sell
    buy_blocked = blocked_any if config.forbid_all_trade_at_limit else panel.limit_buy

    rows: list[tuple[float, ...]] = []
    trades: list[tuple[int, np.ndarray, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    positions: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    last_value = float(config.account)
    last_cost = last_turnover = 0.0
    for k in range(offset, panel.dates.size):
        if k > 0 and present[k - 1].any():  # Qlib makes no orders on a day without scores for the day before
            _trade_day(k, panel, score[k - 1], present[k - 1], book, config, rounder, sell_blocked, buy_blocked, trades)
        # close of day: revalue what is not suspended, count one more day held
        priced = book.held & ~panel.suspended[k]
        book.price[priced] = panel.close[k, priced]
        book.count[book.held] += 1
        held_idx = np.flatnonzero(book.held)
        stock_value = float(np.sum(book.amount[held_idx] * book.price[held_idx]))
        account = stock_value + book.cash
        day_cost = book.total_cost - last_cost
        day_turnover = book.total_turnover - last_turnover
        rows.append(
            (
                account,
                (account - last_value + day_cost) / last_value,
                book.total_turnover,
                day_turnover / last_value,
                book.total_cost,
                day_cost / last_value,
                stock_value,
                book.cash,
                held_idx.size,
            )
        )
        positions.append(
            (k, held_idx, book.amount[held_idx].copy(), book.price[held_idx].copy(), book.count[held_idx].copy())
        )
        last_value, last_cost, last_turnover = account, book.total_cost, book.total_turnover
    days = panel.dates[offset:]
    daily = _report(days, rows, bench)
    metrics = {
        "excess_return_without_cost": risk_analysis(daily["excess_return_without_cost"], freq="day"),
        "excess_return_with_cost": risk_analysis(daily["excess_return_with_cost"], freq="day"),
    }
    return BacktestResult(
        daily=daily,
        metrics=metrics,
        trades=_trades_frame(panel, trades),
        positions=_positions_frame(panel, positions),
        config=config,
    )


def _trade_day(
    k: int,
    panel: MarketPanel,
    score: np.ndarray,
    present: np.ndarray,
    book: _Book,
    config: BacktestConfig,
    rounder: Rounder,
    sell_blocked: np.ndarray,
    buy_blocked: np.ndarray,
    trades: list[tuple],
) -> None:
    tradable = ~(panel.limit_buy[k] | panel.limit_sell[k])
    choice = select(score, present, book.held, tradable, config.topk, config.n_drop, config.only_tradable)
    price = panel.deal_price[k]

    sell = choice.sell[~sell_blocked[k, choice.sell] & (book.count[choice.sell] >= config.hold_thresh)]
    sold = execute_sells(book.cash, book.amount[sell], price[sell], config.close_cost, config.min_cost)
    done = sold.booked
    book.held[sell[done]] = False
    book.amount[sell[done]] = 0.0
    book.count[sell[done]] = 0
    book.cash = sold.cash

    n_buy = choice.buy.size
    budget = book.cash * config.risk_degree / n_buy if n_buy else 0.0
    buy = choice.buy[~buy_blocked[k, choice.buy]]
    wanted = rounder(budget / price[buy], panel.factor[k, buy])
    bought = execute_buys(
        book.cash, wanted, price[buy], panel.factor[k, buy], config.open_cost, config.min_cost, rounder
    )
    done_buy = bought.booked
    new = buy[done_buy]
    book.held[new] = True
    # Qlib books the position as traded value / price, which may differ from the deal in the last bit
    book.amount[new] = bought.value[done_buy] / price[new]
    book.price[new] = price[new]
    book.count[new] = 0
    book.cash = bought.cash

    # running totals in Qlib's order (sells, then buys), so day figures subtract the same way
    book.total_turnover = float(
        np.add.accumulate(np.concatenate([[book.total_turnover], sold.value[done], bought.value[done_buy]]))[-1]
    )
    book.total_cost = float(
        np.add.accumulate(np.concatenate([[book.total_cost], sold.cost[done], bought.cost[done_buy]]))[-1]
    )
    trades.append((k, sell[done], "sell", sold.deal[done], price[sell[done]], sold.value[done], sold.cost[done]))
    trades.append((k, new, "buy", bought.deal[done_buy], price[new], bought.value[done_buy], bought.cost[done_buy]))


def _report(days: np.ndarray, rows: list[tuple[float, ...]], bench: np.ndarray) -> pl.DataFrame:
    names = [
        "account",
        "return",
        "total_turnover",
        "turnover",
        "total_cost",
        "cost",
        "value",
        "cash",
        "n_holdings",
    ]
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    frame = pl.DataFrame({"date": days, **{n: table[:, j] for j, n in enumerate(names)}, "bench": bench})
    return frame.with_columns(
        pl.col("date").cast(pl.Date),
        pl.col("n_holdings").cast(pl.Int64),
        (pl.col("return") - pl.col("bench")).alias("excess_return_without_cost"),
        (pl.col("return") - pl.col("bench") - pl.col("cost")).alias("excess_return_with_cost"),
    )


def _trades_frame(panel: MarketPanel, trades: list) -> pl.DataFrame:
    schema = {
        "date": pl.Date,
        "instrument": pl.Utf8,
        "side": pl.Utf8,
        "amount": pl.Float64,
        "price": pl.Float64,
        "value": pl.Float64,
        "cost": pl.Float64,
    }
    parts = [t for t in trades if t[1].size]
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame(
        {
            "date": np.concatenate([np.full(t[1].size, panel.dates[t[0]]) for t in parts]),
            "instrument": np.concatenate([panel.instruments[t[1]] for t in parts]).astype(str),
            "side": np.concatenate([np.full(t[1].size, t[2]) for t in parts]),
            "amount": np.concatenate([t[3] for t in parts]),
            "price": np.concatenate([t[4] for t in parts]),
            "value": np.concatenate([t[5] for t in parts]),
            "cost": np.concatenate([t[6] for t in parts]),
        },
        schema=schema,
    )


def _positions_frame(panel: MarketPanel, positions: list) -> pl.DataFrame:
    schema = {"date": pl.Date, "instrument": pl.Utf8, "amount": pl.Float64, "price": pl.Float64, "count": pl.Int64}
    parts = [p for p in positions if p[1].size]
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame(
        {
            "date": np.concatenate([np.full(p[1].size, panel.dates[p[0]]) for p in parts]),
            "instrument": np.concatenate([panel.instruments[p[1]] for p in parts]).astype(str),
            "amount": np.concatenate([p[2] for p in parts]),
            "price": np.concatenate([p[3] for p in parts]),
            "count": np.concatenate([p[4] for p in parts]),
        },
        schema=schema,
    )
