"""Qlib's DataHandlerLP pipeline: fit the processors once, then transform any data into DK_R / DK_I / DK_L.

    DK_R = raw rows (membership and [start, end] applied)
    DK_I = infer(shared(DK_R))
    DK_L = learn(DK_I)            process_type "append"
         = learn(shared(DK_R))    process_type "independent"

Every processor is fitted on the previous processor's output (Qlib's ``fit_process_data``). All processors are
local in time (per row, per day or per column with fixed statistics), so fitting on the fit window's rows alone
gives the same statistics as fitting on the whole handler range, and transforming a date range gives the same
rows as slicing the transform of everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from features.dates import DateLike, to_day
from processing.config import STAGES, HandlerConfig, get_handler_config
from processing.panel import Panel, panel_from_frames
from processing.processors import FilterCol, Processor, make_processor, processor_from_state

__all__ = ["FittedHandler", "HandlerConfig", "HandlerData", "fit_handler", "get_handler_config"]

Mode = Literal["raw", "infer", "learn"]
MODES = ("raw", "infer", "learn")
STATE_VERSION = 1


def _build(config: HandlerConfig, fit_start: np.datetime64, fit_end: np.datetime64) -> dict[str, list[Processor]]:
    procs: dict[str, list[Processor]] = {}
    for stage in STAGES:
        procs[stage] = []
        for spec in config.stage(stage):
            kwargs = dict(spec.kwargs)
            proc = make_processor(spec.name, **kwargs)
            if proc.needs_fit_window:
                proc = make_processor(spec.name, **kwargs, fit_start_time=fit_start, fit_end_time=fit_end)
            procs[stage].append(proc)
    return procs


def _run(procs: Sequence[Processor], panel: Panel, fit: bool) -> Panel:
    # inplace=True only overwrites writeable blocks; callers freeze what must survive.
    for proc in procs:
        if fit:
            proc.fit(panel)
        panel = proc.transform(panel, inplace=True)
    return panel


def _later(a: np.datetime64 | None, b: np.datetime64 | None) -> np.datetime64 | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: np.datetime64 | None, b: np.datetime64 | None) -> np.datetime64 | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass
class HandlerData:
    """DK_I for a data range, the DK_R label of its rows, and DK_L on demand for any date sub-range."""

    infer: Panel
    raw_labels: np.ndarray  # float32 [n_raw_rows]: the raw first label column, indexed by Panel.row_ids
    _learn_input: Panel = field(repr=False)
    _learn_procs: list[Processor] = field(repr=False)

    @property
    def calendar(self) -> np.ndarray:
        """Dates present in DK_I (TSDatasetH extends segments backwards on these)."""
        return self.infer.unique_dates()

    def learn(self, start: DateLike | None = None, end: DateLike | None = None) -> Panel:
        """DK_L restricted to [start, end]."""
        return _run(self._learn_procs, self._learn_input.date_slice(start, end), fit=False)


class FittedHandler:
    """A handler configuration with every processor fitted on one fit window."""

    def __init__(
        self,
        config: HandlerConfig,
        processors: dict[str, list[Processor]],
        fit_start: DateLike,
        fit_end: DateLike,
        input_features: Sequence[str],
        output_features: Sequence[str],
    ) -> None:
        self.config = config
        self.processors = processors
        self.fit_start = to_day(fit_start, "fit_start")
        self.fit_end = to_day(fit_end, "fit_end")
        self.input_features = list(input_features)
        self.output_features = list(output_features)

    # -- reading -------------------------------------------------------------------------------------------------
    def _read_columns(self, mode: str) -> list[str]:
        """Feature columns to read: a leading FilterCol on the features is applied while reading."""
        first = self._leading_filter() if mode != "raw" else None
        if first is None:
            return self.input_features
        keep = set(first.col_list)
        return [c for c in self.input_features if c in keep]

    def _leading_filter(self) -> FilterCol | None:
        shared, infer = self.processors["shared"], self.processors["infer"]
        if shared:
            head = shared[0]
        elif infer and self.config.process_type == "append":
            head = infer[0]
        else:
            return None
        if isinstance(head, FilterCol) and head.fields_group == "feature":
            return head
        return None

    def _raw(
        self,
        features: pl.DataFrame,
        labels: pl.DataFrame | None,
        mode: str,
        membership: pl.DataFrame | None,
        start: DateLike | None,
        end: DateLike | None,
    ) -> Panel:
        return panel_from_frames(
            features,
            labels,
            feature_columns=self._read_columns(mode),
            label_columns=(self.config.label_column,),
            membership=membership,
            start=start,
            end=end,
        )

    # -- transforming --------------------------------------------------------------------------------------------
    def transform(
        self,
        features: pl.DataFrame,
        labels: pl.DataFrame | None,
        mode: Mode = "infer",
        membership: pl.DataFrame | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
    ) -> Panel:
        """DK_R ("raw"), DK_I ("infer") or DK_L ("learn") of the rows dated in [start, end]."""
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not one of {list(MODES)}")
        panel = self._raw(features, labels, mode, membership, start, end)
        if mode == "raw":
            return panel
        shared = _run(self.processors["shared"], panel, fit=False)
        if mode == "infer":
            return _run(self.processors["infer"], shared, fit=False)
        if self.config.process_type == "independent":
            return _run(self.processors["learn"], shared, fit=False)
        return _run(self.processors["learn"], _run(self.processors["infer"], shared, fit=False), fit=False)

    def process(
        self,
        features: pl.DataFrame,
        labels: pl.DataFrame | None,
        membership: pl.DataFrame | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
    ) -> HandlerData:
        """DK_I, the raw labels and a lazy DK_L from one read of the data (what the dataset views need)."""
        panel = self._raw(features, labels, "infer", membership, start, end)
        raw_labels = panel.labels[:, 0].copy() if panel.labels.shape[1] else np.full(panel.n_rows, np.nan, np.float32)
        shared = _run(self.processors["shared"], panel, fit=False)
        if self.config.process_type == "independent":
            infer = _run(self.processors["infer"], shared.frozen(), fit=False)
            learn_input = shared
        else:
            infer = _run(self.processors["infer"], shared, fit=False)
            learn_input = infer
        infer = infer.frozen()
        return HandlerData(
            infer=infer,
            raw_labels=raw_labels,
            _learn_input=infer if learn_input is infer else learn_input.frozen(),
            _learn_procs=self.processors["learn"],
        )

    # -- state ---------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-serialisable: the config, the fit window, the columns and every processor's fitted statistics."""
        return {
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "fit_start": str(self.fit_start),
            "fit_end": str(self.fit_end),
            "input_features": list(self.input_features),
            "output_features": list(self.output_features),
            "processors": {stage: [p.to_state() for p in self.processors[stage]] for stage in STAGES},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FittedHandler:
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"handler state must be a dict with version {STATE_VERSION}")
        try:
            config = HandlerConfig.from_dict(state["config"])
            procs = {stage: [processor_from_state(s) for s in state["processors"][stage]] for stage in STAGES}
            fit_start, fit_end = state["fit_start"], state["fit_end"]
            input_features, output_features = state["input_features"], state["output_features"]
        except KeyError as exc:
            raise ValueError(f"handler state lacks {exc}") from None
        for stage in STAGES:
            want = [s.name for s in config.stage(stage)]
            got = [p.name for p in procs[stage]]
            if want != got:
                raise ValueError(f"handler state: {stage} processors {got} do not match the config's {want}")
        return cls(config, procs, fit_start, fit_end, input_features, output_features)

    # -- reporting -----------------------------------------------------------------------------------------------
    def stats_frame(self) -> pl.DataFrame:
        """Every fitted statistic: stage, processor, group, column, stat, value."""
        rows: list[dict[str, Any]] = []
        for stage in STAGES:
            for i, proc in enumerate(self.processors[stage]):
                fitted = proc.fitted_state()
                if not fitted:
                    continue
                for group, names in fitted["columns"].items():
                    for stat, values in fitted["stats"][group].items():
                        for col, v in zip(names, values, strict=True):
                            rows.append(
                                {
                                    "stage": stage,
                                    "processor": f"{i}:{proc.name}",
                                    "group": group,
                                    "column": col,
                                    "stat": stat,
                                    "value": float(v),
                                }
                            )
        schema = {"stage": pl.Utf8, "processor": pl.Utf8, "group": pl.Utf8, "column": pl.Utf8, "stat": pl.Utf8}
        return pl.DataFrame(rows, schema={**schema, "value": pl.Float64})

    def summary(self, max_rows: int = 12) -> str:
        """Markdown: pipeline, fit window, and the first ``max_rows`` columns' fitted statistics."""
        lines = [
            f"**handler** `{self.config.name}` ({self.config.feature_set}, process_type {self.config.process_type})",
            f"**fit window** {self.fit_start} .. {self.fit_end}",
            f"**features** {len(self.input_features)} in, {len(self.output_features)} out",
        ]
        for stage in STAGES:
            lines.append(f"**{stage}**: " + (", ".join(repr(p) for p in self.processors[stage]) or "none"))
        stats = self.stats_frame()
        if stats.height:
            wide = stats.pivot(on="stat", index=["processor", "group", "column"], values="value", maintain_order=True)
            stat_cols = [c for c in wide.columns if c not in ("processor", "group", "column")]
            lines += [
                "",
                "| processor | column | " + " | ".join(stat_cols) + " |",
                "|---|---|" + "---|" * len(stat_cols),
            ]
            for row in wide.head(max_rows).iter_rows(named=True):
                vals = " | ".join("" if row[c] is None else f"{row[c]:.6g}" for c in stat_cols)
                lines.append(f"| {row['processor']} | {row['column']} | {vals} |")
            if wide.height > max_rows:
                lines.append(f"| ... | {wide.height - max_rows} more columns |" + " |" * len(stat_cols))
        return "\n".join(lines)


def fit_handler(
    config: HandlerConfig | str,
    features: pl.DataFrame,
    labels: pl.DataFrame | None,
    fit_start: DateLike,
    fit_end: DateLike,
    membership: pl.DataFrame | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
) -> FittedHandler:
    """Fit every processor of ``config`` on the rows dated in [fit_start, fit_end] (inclusive; intersected with the
    handler range [start, end] when given), each on the previous processor's output, as Qlib does."""
    if isinstance(config, str):
        config = get_handler_config(config)
    fit_lo, fit_hi = to_day(fit_start, "fit_start"), to_day(fit_end, "fit_end")
    if fit_hi < fit_lo:
        raise ValueError(f"fit window ends ({fit_hi}) before it starts ({fit_lo})")
    if "instrument" not in features.columns or "date" not in features.columns:
        raise ValueError("features frame needs the columns instrument and date")
    available = [c for c in features.columns if c not in ("instrument", "date")]
    input_features = list(config.feature_columns) if config.feature_columns is not None else available
    missing = [c for c in input_features if c not in available]
    if missing:
        raise ValueError(f"features frame lacks feature column(s) {missing[:10]} of config {config.name!r}")

    procs = _build(config, fit_lo, fit_hi)
    handler = FittedHandler(config, procs, fit_lo, fit_hi, input_features, [])
    lo, hi = _later(fit_lo, to_day(start, "start")), _earlier(fit_hi, to_day(end, "end"))
    panel = handler._raw(features, labels, "infer", membership, lo, hi)
    if panel.n_rows == 0:
        raise ValueError(f"no rows in the fit window {fit_lo}..{fit_hi} (handler range {start}..{end})")
    shared = _run(procs["shared"], panel, fit=True)
    if config.process_type == "independent":
        infer = _run(procs["infer"], shared.frozen(), fit=True)
        _run(procs["learn"], shared, fit=True)
    else:
        infer = _run(procs["infer"], shared, fit=True)
        _run(procs["learn"], infer.frozen(), fit=True)
    handler.output_features = list(infer.feature_names)
    return handler
