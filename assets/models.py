"""Group ``handlers``: the fitted data handlers (each handler's processor statistics); group ``models``: one
training asset per model configuration and one daily-partitioned scoring asset per model, all made by
factories."""

from typing import Any

import dagster as dg
import pydantic

from features import catalog
from models.config import (
    ModelConfig,
    base_config_name,
    get_model_config,
    model_config_names,
    model_handlers,
    network_summary,
    relevant_fields,
)
from pipeline.code_versions import code_version
from pipeline.metadata import line_plot_markdown
from pipeline.partitions import window_dates
from pipeline.profiles import profile_overrides
from pipeline.resources import ComputeResource, SegmentsResource, WarehouseResource
from processing.config import get_handler_config
from warehouse.feature_store import FEATURE_TABLES
from workflow.names import CONCEPTS_ASSET, handler_asset, model_asset, predictions_asset

# workflow.training and workflow.scoring are imported inside the asset bodies: they pull in torch (about 2 s),
# which loading the definitions for a run of bars or features never needs.

# The fitted handlers have their own group: they are fitted on the train segment, not date-rangeable like
# group `features`, so `--select 'group:features' --start .. --end ..` stays a pure range selection.
GROUP_DATA = "handlers"
GROUP = "models"


def handler_upstream(handlers: tuple[str, ...] | None = None) -> list[str]:
    """The assets the fitted ``handlers`` (default: those of the model configurations) stand on: the bars, the
    feature and label tables of their feature sets (from the catalog), the handler assets themselves and the
    concepts HIST reads."""
    handlers = model_handlers() if handlers is None else handlers
    sets = dict.fromkeys([*(get_handler_config(h).feature_set for h in handlers), catalog.label_set().name])
    tables = [catalog.get(s).table for s in sets]
    # HIST's concepts are fitted on the train segment like the handlers (cheap: seconds on CSI300).
    return ["calendar", "universe", "bars", *tables, *(handler_asset(h) for h in handlers), CONCEPTS_ASSET]


def build_handler_asset(handler: str) -> dg.AssetsDefinition:
    feature_table = FEATURE_TABLES[get_handler_config(handler).feature_set]

    @dg.asset(
        name=handler_asset(handler),
        group_name=GROUP_DATA,
        code_version=code_version(__name__),
        kinds={"polars", "duckdb"},
        deps=[feature_table, catalog.label_set().table, "universe"],
        description=f"The `{handler}` data handler: its processors fitted on the fit window (the train segment), "
        "statistics stored in table `handlers` so that training and scoring apply the same transform.",
    )
    def _handler(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, segments: SegmentsResource
    ) -> dg.MaterializeResult:
        from workflow.handlers import fit_and_store_handler

        seg = segments.for_run(context, warehouse.get())
        fit = fit_and_store_handler(warehouse.get(), handler, seg)
        context.log.info(f"{handler}: fitted on {fit.fit_start}..{fit.fit_end}, version {fit.version}")
        return dg.MaterializeResult(
            metadata={
                "handler_version": fit.version,
                "fit_window": f"{fit.fit_start}..{fit.fit_end}",
                "rows_in_fit_window": fit.rows,
                "segments": seg.describe(),
                "processors": dg.MetadataValue.md(fit.fitted.summary()),
            },
            data_version=dg.DataVersion(fit.version),
        )

    return _handler


def model_config_class(name: str, base: ModelConfig) -> type[dg.Config]:
    """A Launchpad form with the hyperparameters ``name``'s model type reads (``relevant_fields``), defaulting to
    the benchmark's values under the run's profile; the fields it does not read stay at those values."""
    fields: dict[str, Any] = {}
    for field in relevant_fields(base):
        value = getattr(base, field)
        annotation = type(value) if value is not None else (int | None)
        fields[field] = (annotation, pydantic.Field(default=value))
    return pydantic.create_model(f"{name.title().replace('_', '')}TrainingConfig", __base__=dg.Config, **fields)


def model_inputs(config: ModelConfig) -> list[str]:
    """The assets a model's training reads besides its handler's tables: the trained base model it starts from
    (GATs / HIST / IGMTF: Qlib's pretrained base RNN, here this pipeline's own) and, for HIST, the concepts."""
    inputs = []
    base = base_config_name(config)
    if base is not None:
        inputs.append(model_asset(base))
    if config.model == "hist":
        inputs.append(CONCEPTS_ASSET)
    return inputs


def _concepts(warehouse: WarehouseResource, config: ModelConfig):
    """HIST's stored concepts (None for every other model: the workflow refuses HIST without them)."""
    if config.model != "hist":
        return None
    from workflow.concepts import load_concepts

    return load_concepts(warehouse.get())


def build_model_asset(name: str, profile: str) -> dg.AssetsDefinition:
    base = get_model_config(name, **profile_overrides(profile, name))
    config_cls = model_config_class(name, base)
    feature_table = FEATURE_TABLES[get_handler_config(base.handler).feature_set]

    @dg.asset(
        name=model_asset(name),
        group_name=GROUP,
        code_version=code_version(__name__),
        kinds={"pytorch"},
        pool="training",
        deps=[handler_asset(base.handler), feature_table, catalog.label_set().table, *model_inputs(base)],
        description=f"Trains `{name}` ({base.model.upper()} on {base.handler}, {base.layout} view) on the "
        "train segment with early stopping on valid; stores the artifact (weights, config, processor statistics) "
        "and registers it in table `models`."
        + (
            f" Starts from the weights of `{model_asset(base_config_name(base))}` (its trained base "
            f"{base.base_model}), whose version it records."
            if base_config_name(base)
            else ""
        )
        + (" Reads the stock-to-concept memberships of `concepts`." if base.model == "hist" else ""),
    )
    def _model(
        context: dg.AssetExecutionContext,
        config: config_cls,  # type: ignore[valid-type]
        warehouse: WarehouseResource,
        segments: SegmentsResource,
        compute: ComputeResource,
    ) -> dg.MaterializeResult:
        from workflow.training import train_and_store

        cfg = base.replace(**config.model_dump())
        seg = segments.for_run(context, warehouse.get())
        context.log.info(
            f"{name}: profile {profile} (Launchpad values over it), up to {cfg.n_epochs} epochs"
            + (f" of at most {cfg.max_batches_per_epoch} batches" if cfg.max_batches_per_epoch else "")
            + f"; network {network_summary(cfg)}; device {compute.device}"
        )
        concepts = _concepts(warehouse, cfg)
        trained = train_and_store(
            warehouse.get(),
            warehouse.artifact_dir,
            name,
            cfg,
            seg,
            device=compute.device,
            log=context.log.info,
            concepts=concepts,
        )
        r = trained.result
        curves = {
            "train loss": [h["train_loss"] for h in r.history],
            "valid loss": [h["valid_loss"] for h in r.history],
        }
        return dg.MaterializeResult(
            metadata={
                "model_version": trained.version,
                "artifact": dg.MetadataValue.path(str(trained.path)),
                "device": r.device,
                "parameters": r.n_parameters,
                "epochs_run": r.epochs_run,
                "best_epoch": r.best_epoch,
                "best_valid_score": float(r.best_score),
                "wall_time_s": round(r.wall_time_s, 2),
                "samples_per_s": round(r.samples_per_s, 1),
                "train_samples": trained.n_train,
                "valid_samples": trained.n_valid,
                "segments": seg.describe(),
                "handler_version": trained.handler_version,
                **(
                    {"base_model": trained.base_model, "base_model_version": trained.base_model_version}
                    if trained.base_model
                    else {}
                ),
                **({"concepts_source": concepts.source, "concepts": concepts.n_concepts} if concepts else {}),
                "loss_curves": dg.MetadataValue.md(line_plot_markdown(curves, "epoch", "loss")),
            },
            data_version=dg.DataVersion(trained.version),
        )

    return _model


def build_predictions_asset(name: str, profile: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    base = get_model_config(name, **profile_overrides(profile, name))
    feature_table = FEATURE_TABLES[get_handler_config(base.handler).feature_set]
    # the sequence view reads step_len (20) trading days of history
    lookback = dg.TimeWindowPartitionMapping(start_offset=-30, end_offset=0)

    @dg.asset(
        name=predictions_asset(name),
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="warehouse",
        code_version=code_version(__name__),
        kinds={"pytorch", "duckdb"},
        deps=[
            model_asset(name),
            dg.AssetDep(feature_table, partition_mapping=lookback),
            *([CONCEPTS_ASSET] if base.model == "hist" else []),
        ],
        description=f"Scores of `{name}`'s registered artifact for each out-of-sample day of the partition window "
        "(after its validation segment), table `predictions(model, model_version, instrument, date, score)`; "
        "`model_version` names the artifact.",
    )
    def _predictions(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, compute: ComputeResource
    ) -> dg.MaterializeResult:
        from workflow.scoring import score_window

        start, end = window_dates(context)
        report = score_window(
            warehouse.get(),
            name,
            start,
            end,
            device=compute.device,
            log=context.log,
            concepts=_concepts(warehouse, base),
        )
        return dg.MaterializeResult(
            metadata={
                "model_version": report.version,
                "rows": report.rows,
                "date_range": f"{start}..{end}",
                "scored_from": str(report.first_day),
                "seconds": round(report.seconds, 3),
                "phase_seconds": {k: round(v, 3) for k, v in report.phases.items()},
            }
        )

    return _predictions


def build_model_assets(partitions: dg.PartitionsDefinition, profile: str) -> list[dg.AssetsDefinition]:
    assets = [build_handler_asset(h) for h in model_handlers()]
    assets += [build_model_asset(n, profile) for n in model_config_names()]
    assets += [build_predictions_asset(n, profile, partitions) for n in model_config_names()]
    return assets
