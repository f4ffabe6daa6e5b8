"""Group ``evaluation``: per model, Qlib's signal analysis (SigAnaRecord) and TopkDropout backtest
(PortAnaRecord) on the out-of-sample scores of the test segment; then a leaderboard of every model."""

import dagster as dg
import polars as pl

from evaluation.backtest import BACKTEST_WINDOW, BacktestConfig
from features import catalog
from pipeline.code_versions import code_version
from pipeline.forms import config_form
from pipeline.metadata import frame_markdown, line_plot_markdown
from pipeline.resources import MarketSourceResource, SegmentsResource, WarehouseResource
from warehouse.feature_store import trading_days
from workflow.evaluation import (
    evaluate_backtest,
    evaluate_signal,
    leaderboard,
    out_of_sample_scores,
    read_labels,
    store_backtest,
    store_signal,
)
from workflow.names import backtest_asset, predictions_asset, signal_asset

GROUP = "evaluation"


# The Launchpad form of the backtest: every strategy and exchange setting of BacktestConfig (Qlib's benchmark
# defaults); the window is the test segment.
BacktestRunConfig = config_form("BacktestRunConfig", BacktestConfig(), exclude=BACKTEST_WINDOW)


def _scores(warehouse: WarehouseResource, segments: SegmentsResource, model: str) -> tuple[pl.DataFrame, tuple]:
    wh = warehouse.get()
    window = segments.evaluation_window(trading_days(wh))
    scores = out_of_sample_scores(wh, model, *window)
    if scores.height == 0:
        raise ValueError(
            f"no out-of-sample scores of {model} in the test segment {window[0]}..{window[1]}; "
            f"materialize {predictions_asset(model)} for those dates"
        )
    return scores, window


def build_signal_asset(model: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=signal_asset(model),
        group_name=GROUP,
        code_version=code_version(__name__),
        pool="warehouse",
        kinds={"duckdb"},
        deps=[predictions_asset(model), catalog.label_set().table],
        description=f"Signal analysis of `{model}` (Qlib's SigAnaRecord): daily IC and Rank IC against LABEL0, "
        "their means, ICIR and Rank ICIR, long-short returns; tables `ic_daily` and `signal_metrics`.",
    )
    def _signal(warehouse: WarehouseResource, segments: SegmentsResource) -> dg.MaterializeResult:
        scores, (start, end) = _scores(warehouse, segments, model)
        report = evaluate_signal(scores, read_labels(warehouse.get(), start, end))
        store_signal(warehouse.get(), model, report, start, end)
        daily = report.daily.sort("date")
        metrics = report.metrics
        return dg.MaterializeResult(
            metadata={
                **{k: float(v) for k, v in metrics.items()},
                "days": daily.height,
                "date_range": f"{start}..{end}",
                "model_versions": scores["model_version"].n_unique(),
                "metrics": dg.MetadataValue.md(frame_markdown(pl.DataFrame([metrics]))),
                "cumulative_ic": dg.MetadataValue.md(
                    line_plot_markdown(
                        {
                            "IC": daily["ic"].fill_null(0).cum_sum().to_list(),
                            "Rank IC": daily["rank_ic"].fill_null(0).cum_sum().to_list(),
                        },
                        "date",
                        "cumulative IC",
                        x=daily["date"].to_list(),
                    )
                ),
            }
        )

    return _signal


def build_backtest_asset(model: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=backtest_asset(model),
        group_name=GROUP,
        code_version=code_version(__name__),
        pool="warehouse",
        kinds={"duckdb"},
        deps=[predictions_asset(model), "bars"],
        description=f"TopkDropout backtest of `{model}` (Qlib's PortAnaRecord): daily return, cost, turnover and "
        "benchmark in `backtest_daily`; risk analysis of the excess return without and with cost in "
        "`backtest_metrics`.",
    )
    def _backtest(
        config: BacktestRunConfig,  # type: ignore[valid-type]
        warehouse: WarehouseResource,
        segments: SegmentsResource,
        source: MarketSourceResource,
    ) -> dg.MaterializeResult:
        scores, window = _scores(warehouse, segments, model)
        # Qlib's workflow: the backtest covers the test segment, its first day (no score of the day before) included
        result = evaluate_backtest(
            warehouse.get(), scores, source.benchmark_instrument(), BacktestConfig(**config.model_dump()), window
        )
        store_backtest(warehouse.get(), model, result)
        daily = result.daily.sort("date")
        no_cost = daily["excess_return_without_cost"].fill_null(0).cum_sum()
        with_cost = daily["excess_return_with_cost"].fill_null(0).cum_sum()
        drawdown = with_cost - with_cost.cum_max()
        table = pl.DataFrame([{"variant": k, **v} for k, v in result.metrics.items()])
        flat = {f"{k}/{m}": float(v) for k, vals in result.metrics.items() for m, v in vals.items()}
        return dg.MaterializeResult(
            metadata={
                **flat,
                "days": daily.height,
                "date_range": f"{daily['date'].min()}..{daily['date'].max()}",
                "risk_analysis": dg.MetadataValue.md(frame_markdown(table)),
                "cumulative_excess_return": dg.MetadataValue.md(
                    line_plot_markdown(
                        {"without cost": no_cost.to_list(), "with cost": with_cost.to_list()},
                        "date",
                        "cumulative excess return",
                        x=daily["date"].to_list(),
                    )
                ),
                "drawdown": dg.MetadataValue.md(
                    line_plot_markdown({"with cost": drawdown.to_list()}, "date", "drawdown", x=daily["date"].to_list())
                ),
            }
        )

    return _backtest


def build_leaderboard_asset(models: list[str]) -> dg.AssetsDefinition:
    @dg.asset(
        name="leaderboard",
        group_name=GROUP,
        code_version=code_version(__name__),
        pool="warehouse",
        kinds={"duckdb"},
        deps=[asset(m) for m in models for asset in (signal_asset, backtest_asset)],
        description="Every trained model side by side: IC, ICIR, Rank IC, Rank ICIR, annualized excess return, "
        "information ratio and max drawdown without and with cost, training time; table `leaderboard`.",
    )
    def _leaderboard(warehouse: WarehouseResource) -> dg.MaterializeResult:
        board = leaderboard(warehouse.get())
        if board.height:
            warehouse.get().replace("leaderboard", board)
        return dg.MaterializeResult(
            metadata={"models": board.height, "leaderboard": dg.MetadataValue.md(frame_markdown(board))}
        )

    return _leaderboard


def build_evaluation_assets(models: list[str]) -> list[dg.AssetsDefinition]:
    assets = [build_signal_asset(m) for m in models] + [build_backtest_asset(m) for m in models]
    return [*assets, build_leaderboard_asset(models)]
