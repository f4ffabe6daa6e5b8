"""The evaluation workflow over the warehouse, as plain functions the Dagster assets and the command line call:
out-of-sample scores -> signal analysis -> TopkDropout backtest -> leaderboard."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl

from evaluation.backtest import BacktestConfig, BacktestResult, run_backtest
from evaluation.market import benchmark_returns_from_bars
from evaluation.signal import signal_analysis
from warehouse.schema import member_condition
from warehouse.store import Warehouse

BACKTEST_BAR_COLUMNS = "instrument, date, open, high, low, close, volume, factor, change, vwap"
RISK_KEYS = ("mean", "std", "annualized_return", "information_ratio", "max_drawdown")


def out_of_sample_scores(warehouse: Warehouse, model: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Per (instrument, date) in [start, end] where the instrument is a member of the configured universe (table
    ``instruments``), the score of the newest version of ``model`` whose validation segment ended before that
    date: walk-forward scores, never in-sample. The membership test keeps out the scores a warehouse still holds
    from another universe or source (a synthetic run before a CSI300 one): their instruments would otherwise
    take places in the backtest's top k."""
    member = f"and {member_condition('p')}" if warehouse.table_exists("instruments") else ""
    return warehouse.query(
        f"""
        select p.instrument, p.date, p.score, p.model_version
        from predictions p join models m using (model, model_version)
        where p.model = ? and p.date between ? and ? and p.date > m.valid_end {member}
        qualify row_number() over (partition by p.instrument, p.date order by m.trained_at desc) = 1
        order by p.date, p.instrument
        """,
        [model, start, end],
    )


def read_labels(warehouse: Warehouse, start: dt.date, end: dt.date) -> pl.DataFrame:
    return warehouse.query(
        'select instrument, date, "LABEL0" from labels where date between ? and ? order by date, instrument',
        [start, end],
    )


def read_backtest_bars(warehouse: Warehouse, start: dt.date, end: dt.date) -> pl.DataFrame:
    # One trading day before the start: trades of the first day use the previous day's scores.
    return warehouse.query(
        f"select {BACKTEST_BAR_COLUMNS} from bars where date between ? and ? order by instrument, date",
        [start - dt.timedelta(days=31), end],
    )


@dataclass
class SignalReport:
    daily: pl.DataFrame
    metrics: dict[str, float]


def evaluate_signal(scores: pl.DataFrame, labels: pl.DataFrame) -> SignalReport:
    daily, metrics = signal_analysis(scores.select("instrument", "date", "score"), labels)
    return SignalReport(daily, metrics)


def backtest_window(
    scores: pl.DataFrame, config: BacktestConfig, window: tuple[dt.date, dt.date] | None = None
) -> tuple[dt.date, dt.date]:
    """The backtest's [start, end] as Qlib's benchmark workflows set it (``port_analysis_config.backtest``
    start_time / end_time = the test segment): the config's dates where set, else ``window`` (the test segment),
    else the first and last score date."""
    lo, hi = window if window is not None else (scores["date"].min(), scores["date"].max())
    return config.start_date or lo, config.end_date or hi


def evaluate_backtest(
    warehouse: Warehouse,
    scores: pl.DataFrame,
    benchmark: str | None,
    config: BacktestConfig,
    window: tuple[dt.date, dt.date] | None = None,
) -> BacktestResult:
    """TopkDropout backtest over ``backtest_window``, every trading day of it in the report. With scores that
    start on the window's first day (the test segment's own predictions) that day trades nothing and counts with
    return 0 and the benchmark's return, as in Qlib; scores of the day before it, if given, are traded on it."""
    start, end = backtest_window(scores, config, window)
    bars = read_backtest_bars(warehouse, start, end)
    bench = benchmark_returns_from_bars(bars, benchmark) if benchmark else None
    stocks = bars.filter(pl.col("instrument") != benchmark) if benchmark else bars
    config = dataclasses.replace(config, start_date=start, end_date=end)
    return run_backtest(scores.select("instrument", "date", "score"), stocks, bench, config)


def store_signal(warehouse: Warehouse, model: str, report: SignalReport, start: dt.date, end: dt.date) -> None:
    daily = report.daily.with_columns(pl.lit(model).alias("model")).select("model", *report.daily.columns)
    warehouse.replace("ic_daily", daily, where={"model": model}, key=("model", "date"))
    row = pl.DataFrame(
        [{"model": model, "start_date": start, "end_date": end, **{k: float(v) for k, v in report.metrics.items()}}]
    )
    warehouse.replace("signal_metrics", row, where={"model": model}, key=("model",))


def store_backtest(warehouse: Warehouse, model: str, result: BacktestResult) -> None:
    daily = result.daily.with_columns(pl.lit(model).alias("model")).select("model", *result.daily.columns)
    warehouse.replace("backtest_daily", daily, where={"model": model}, key=("model", "date"))
    rows = [
        {"model": model, "variant": variant, **{k: float(values[k]) for k in RISK_KEYS}}
        for variant, values in result.metrics.items()
    ]
    warehouse.replace("backtest_metrics", pl.DataFrame(rows), where={"model": model}, key=("model", "variant"))


def leaderboard(warehouse: Warehouse) -> pl.DataFrame:
    """Every evaluated model side by side; ``notes`` says where HIST's concepts came from (a file, the synthetic
    sectors, or derived from the train segment)."""
    needed = ("signal_metrics", "backtest_metrics", "models")
    if not all(warehouse.table_exists(t) for t in needed):
        return pl.DataFrame()
    # A models table from before the graph models has no base columns until its next write adds them.
    base = "base_model_version" if "base_model_version" in warehouse.columns("models") else "null"
    concepts = (
        "(select 'concepts: ' || any_value(source) from concept_source)"
        if warehouse.table_exists("concept_source")
        else "null"
    )
    return warehouse.query(
        f"""
        with latest as (
            select model, model_version, device, wall_time_s, epochs_run, best_epoch,
                {base} as base_model_version, config->>'$.model' as model_type
            from models qualify row_number() over (partition by model order by trained_at desc) = 1
        ), bt as (
            select model,
                max(case when variant = 'excess_return_without_cost' then annualized_return end) as ann_return_no_cost,
                max(case when variant = 'excess_return_without_cost' then information_ratio end) as ir_no_cost,
                max(case when variant = 'excess_return_without_cost' then max_drawdown end) as mdd_no_cost,
                max(case when variant = 'excess_return_with_cost' then annualized_return end) as ann_return_with_cost,
                max(case when variant = 'excess_return_with_cost' then information_ratio end) as ir_with_cost,
                max(case when variant = 'excess_return_with_cost' then max_drawdown end) as mdd_with_cost
            from backtest_metrics group by model
        )
        select s.model, s.ic, s.icir, s.rank_ic, s.rank_icir,
               bt.ann_return_no_cost, bt.ir_no_cost, bt.mdd_no_cost,
               bt.ann_return_with_cost, bt.ir_with_cost, bt.mdd_with_cost,
               l.wall_time_s as train_time_s, l.epochs_run, l.best_epoch, l.device, l.model_version,
               l.base_model_version, case when l.model_type = 'hist' then {concepts} end as notes,
               s.start_date, s.end_date
        from signal_metrics s left join bt using (model) left join latest l using (model)
        order by s.ic desc
        """
    )


def evaluation_summary(signal: dict[str, float], backtest: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The JSON object of ``python -m pipeline backtest``: Qlib's key names."""
    out: dict[str, Any] = {k: signal.get(k) for k in ("ic", "icir", "rank_ic", "rank_icir")}
    for variant in ("excess_return_without_cost", "excess_return_with_cost"):
        out[variant] = {k: backtest[variant][k] for k in RISK_KEYS}
    return out
