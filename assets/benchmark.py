"""Group ``benchmark``: the results table of Qlib's LSTM / GRU / ALSTM benchmark, reproduced (every model
configuration x seeds, mean ± std), with Qlib's own implementation side by side when its scores are given.

Not part of `make run` or the daily jobs: it trains every configuration several times (hours on a CPU).
Launch it with ``python -m pipeline benchmark`` (or `make benchmark` on the CSI300 data) or from the UI.
"""

import dagster as dg
import polars as pl
import pydantic

from assets.models import handler_upstream
from models.config import get_model_config, model_config_names
from pipeline.code_versions import code_version
from pipeline.metadata import benchmark_bars_markdown, frame_markdown
from pipeline.resources import ComputeResource, MarketSourceResource, SegmentsResource, WarehouseResource
from warehouse.feature_store import trading_days
from workflow.benchmark_plan import FULL_SEEDS

GROUP = "benchmark"


class BenchmarkConfig(dg.Config):
    """Which configurations, seeds and epoch budget the benchmark trains (Launchpad form)."""

    models: list[str] = pydantic.Field(
        default_factory=lambda: list(model_config_names()), description="model configurations to train"
    )
    seeds: list[int] = pydantic.Field(default_factory=lambda: list(FULL_SEEDS), description="one run per seed")
    max_epochs: int = pydantic.Field(
        default=0, description="cap on each configuration's n_epochs (0: Qlib's 200 with early stopping)"
    )
    threads: int = pydantic.Field(default=0, description="torch CPU threads (0: torch's default)")
    qlib_reference: str = pydantic.Field(
        default="",
        description="directory written by bench/qlib_reference.py: its scores are evaluated the same way and "
        "shown side by side (empty: none)",
    )
    skip_training: bool = pydantic.Field(
        default=False, description="only (re)evaluate the Qlib reference; keep the runs already stored"
    )


@dg.asset(
    name="benchmark_results",
    group_name=GROUP,
    code_version=code_version(__name__),
    kinds={"pytorch", "duckdb"},
    pool="training",
    deps=[k for k in handler_upstream() if k not in ("calendar", "universe")],
    description="Qlib's benchmark table: every model configuration trained for several seeds on the train "
    "segment, scored on test, evaluated with IC / ICIR / Rank IC / Rank ICIR and the TopkDropout backtest with "
    "cost; mean ± std per model in table `benchmark_results` (per seed: `benchmark_runs`, scores: "
    "`benchmark_scores`).",
)
def benchmark_results(
    context: dg.AssetExecutionContext,
    config: BenchmarkConfig,
    warehouse: WarehouseResource,
    source: MarketSourceResource,
    segments: SegmentsResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    # Imported here: they pull in torch (~2 s), which a CLI run of other assets never needs.
    from evaluation.benchmark_table import comparison_markdown, results_markdown
    from workflow.benchmark import BenchmarkPlan, evaluate_reference, read_results, read_runs, run_benchmark

    wh = warehouse.get()
    seg = segments.resolve(trading_days(wh), rolling=False)
    benchmark = source.benchmark_instrument()
    plan = BenchmarkPlan(
        models=tuple(config.models),
        seeds=tuple(config.seeds),
        max_epochs=config.max_epochs,
        device=compute.device,
        threads=config.threads,
    )
    if not config.skip_training:
        concepts = None
        if any(get_model_config(m).model == "hist" for m in plan.models):
            from workflow.concepts import load_concepts

            concepts = load_concepts(wh)
        run_benchmark(wh, plan, seg, benchmark, log=context.log.info, concepts=concepts)
    if config.qlib_reference:
        evaluate_reference(wh, config.qlib_reference, seg, benchmark, log=context.log.info)
    results = read_results(wh)
    runs = read_runs(wh)
    shown = ["implementation", "model", "n_epochs", "seed", "ic", "rank_ic", "information_ratio", "train_s", "device"]
    return dg.MaterializeResult(
        metadata={
            "segments": seg.describe(),
            "benchmark": benchmark or "",
            "plan": "no training: evaluated the reference scores only"
            if config.skip_training
            else f"models {', '.join(plan.models)}; seeds {list(plan.seeds)}; "
            f"epochs {'capped at ' + str(plan.max_epochs) if plan.max_epochs else 'as configured (200, early stop)'}",
            "results": dg.MetadataValue.md(results_markdown(results)),
            "side_by_side": dg.MetadataValue.md(comparison_markdown(results)),
            "runs": dg.MetadataValue.md(frame_markdown(runs.select(shown)) if runs.height else "_none_"),
            "n_runs": runs.height,
            "implementations": ", ".join(sorted(runs["implementation"].unique().to_list())) if runs.height else "",
            "chart": dg.MetadataValue.md(benchmark_bars_markdown(results) if results.height else "_none_"),
            "mean_ic": dg.MetadataValue.md(
                frame_markdown(
                    results.select("model", "n_epochs", "implementation", "ic_mean", "rank_ic_mean").sort(
                        "model", "n_epochs", "implementation"
                    )
                    if results.height
                    else pl.DataFrame()
                )
            ),
        }
    )
