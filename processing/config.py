"""Handler configurations: processor lists per stage, process type, feature set; and the named presets.

The presets reproduce Qlib's handler defaults (qlib/contrib/data/handler.py) and the LSTM / GRU / ALSTM benchmark
YAMLs (examples/benchmarks/*/workflow_config_*_Alpha{158,360}.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from features.catalog import FEATURE, CatalogView
from processing.processors import PROCESSORS, make_processor

ProcessType = Literal["append", "independent"]
PROCESS_TYPES = ("append", "independent")
STAGES = ("shared", "infer", "learn")
# The feature sets a handler can read: every catalog set with role "feature" (built-ins and PIPELINE_FEATURES).
FEATURE_SETS: CatalogView[str] = CatalogView(lambda spec: spec.table, role=FEATURE)
FIT_WINDOW_KWARGS = ("fit_start_time", "fit_end_time")

# The 20 Alpha158 features of the *_ts benchmark YAMLs, in the order FilterCol leaves them (Alpha158's order).
ALPHA158_20 = (
    "KLEN",
    "KLOW",
    "ROC60",
    "STD5",
    "RSQR5",
    "RSQR10",
    "RSQR20",
    "RSQR60",
    "RESI5",
    "RESI10",
    "CORR5",
    "CORR10",
    "CORR20",
    "CORR60",
    "CORD5",
    "CORD10",
    "CORD60",
    "VSTD5",
    "WVMA5",
    "WVMA60",
)


@dataclass(frozen=True)
class ProcessorSpec:
    """One processor: Qlib class name and constructor kwargs (the fit window is injected by ``fit_handler``)."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in PROCESSORS:
            raise ValueError(f"unknown processor {self.name!r}; valid processors: {sorted(PROCESSORS)}")
        given = [k for k in FIT_WINDOW_KWARGS if k in self.kwargs]
        if given:
            raise ValueError(f"processor {self.name}: {given} come from fit_handler's fit window, not the config")
        make_processor(self.name, **self.kwargs)  # validates the kwargs

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.name, "kwargs": dict(self.kwargs)}

    @classmethod
    def parse(cls, spec: ProcessorSpec | str | Mapping[str, Any]) -> ProcessorSpec:
        """From a spec, a bare class name, or Qlib's ``{"class": name, "kwargs": {...}}``."""
        if isinstance(spec, ProcessorSpec):
            return spec
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, Mapping) and "class" in spec:
            extra = set(spec) - {"class", "kwargs", "module_path"}
            if extra:
                raise ValueError(f"processor spec {dict(spec)} has unknown keys {sorted(extra)}")
            return cls(str(spec["class"]), dict(spec.get("kwargs") or {}))
        raise ValueError(f"a processor spec is a class name or {{'class': ..., 'kwargs': ...}}, got {spec!r}")


@dataclass(frozen=True)
class HandlerConfig:
    """A DataHandlerLP setup.

    ``feature_columns`` (optional) restricts the feature frame's columns read; None reads all of them.
    """

    name: str
    feature_set: str
    infer: tuple[ProcessorSpec, ...] = ()
    learn: tuple[ProcessorSpec, ...] = ()
    shared: tuple[ProcessorSpec, ...] = ()
    process_type: ProcessType = "append"
    feature_columns: tuple[str, ...] | None = None
    label_column: str = "LABEL0"
    # The Dataset column of Qlib's benchmark table for models on this handler ("": the handler's name).
    title: str = ""

    def __post_init__(self) -> None:
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set={self.feature_set!r} is not one of {list(FEATURE_SETS)}")
        if self.process_type not in PROCESS_TYPES:
            raise ValueError(f"process_type={self.process_type!r} is not one of {list(PROCESS_TYPES)}")
        for stage in STAGES:
            specs = tuple(ProcessorSpec.parse(s) for s in getattr(self, stage))
            object.__setattr__(self, stage, specs)
            if stage != "learn":
                for spec in specs:
                    if not make_processor(spec.name, **spec.kwargs).is_for_infer():
                        raise ValueError(f"{spec.name} is for learning only and cannot be in the {stage} processors")
        if self.feature_columns is not None:
            object.__setattr__(self, "feature_columns", tuple(self.feature_columns))
        if not self.title:
            object.__setattr__(self, "title", self.name)

    def stage(self, stage: str) -> tuple[ProcessorSpec, ...]:
        return getattr(self, stage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature_set": self.feature_set,
            "shared": [s.to_dict() for s in self.shared],
            "infer": [s.to_dict() for s in self.infer],
            "learn": [s.to_dict() for s in self.learn],
            "process_type": self.process_type,
            "feature_columns": None if self.feature_columns is None else list(self.feature_columns),
            "label_column": self.label_column,
            "title": self.title,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HandlerConfig:
        known = {
            "name",
            "feature_set",
            "shared",
            "infer",
            "learn",
            "process_type",
            "feature_columns",
            "label_column",
            "title",
        }
        extra = set(data) - known
        if extra:
            raise ValueError(f"handler config has unknown keys {sorted(extra)}; known: {sorted(known)}")
        kwargs = dict(data)
        for stage in STAGES:
            kwargs[stage] = tuple(kwargs.get(stage) or ())
        return cls(**kwargs)


def _specs(*items: tuple[str, dict[str, Any]]) -> tuple[ProcessorSpec, ...]:
    return tuple(ProcessorSpec(n, kw) for n, kw in items)


_DEFAULT_LEARN = _specs(("DropnaLabel", {}), ("CSZScoreNorm", {"fields_group": "label"}))
_YAML_INFER = _specs(
    ("RobustZScoreNorm", {"fields_group": "feature", "clip_outlier": True}), ("Fillna", {"fields_group": "feature"})
)
_YAML_LEARN = _specs(("DropnaLabel", {}), ("CSRankNorm", {"fields_group": "label"}))

HANDLER_CONFIGS: dict[str, HandlerConfig] = {
    # Qlib's Alpha158 handler defaults: no infer processors.
    "alpha158": HandlerConfig(name="alpha158", feature_set="alpha158", infer=(), learn=_DEFAULT_LEARN),
    # Qlib's Alpha360 handler defaults; note ZScoreNorm and Fillna have fields_group None (they touch the label).
    "alpha360": HandlerConfig(
        name="alpha360",
        feature_set="alpha360",
        infer=_specs(("ProcessInf", {}), ("ZScoreNorm", {}), ("Fillna", {})),
        learn=_DEFAULT_LEARN,
    ),
    # LSTM / GRU / ALSTM Alpha360 benchmark YAML (DatasetH, non-TS models).
    "alpha360_rnn": HandlerConfig(
        name="alpha360_rnn", feature_set="alpha360", infer=_YAML_INFER, learn=_YAML_LEARN, title="Alpha360"
    ),
    # LSTM / GRU / ALSTM Alpha158 benchmark YAML (TSDatasetH, *_ts models): FilterCol to 20 features first.
    "alpha158_20": HandlerConfig(
        name="alpha158_20",
        feature_set="alpha158",
        infer=(ProcessorSpec("FilterCol", {"fields_group": "feature", "col_list": list(ALPHA158_20)}), *_YAML_INFER),
        learn=_YAML_LEARN,
        title="Alpha158 (20 cols)",
    ),
}


def get_handler_config(name: str) -> HandlerConfig:
    """A named configuration: alpha158, alpha360, alpha360_rnn or alpha158_20."""
    try:
        return HANDLER_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown handler config {name!r}; valid names: {sorted(HANDLER_CONFIGS)}") from None
