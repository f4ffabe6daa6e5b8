"""Qlib's data processors (qlib/data/dataset/processor.py, 0.9.x semantics) over a :class:`Panel`: the
registry by Qlib class name, and the filtering and filling ones (the normalizers are in ``processing.normalizers``).

Each processor has ``fit(panel)`` (a no-op unless it learns statistics from the fit window) and
``transform(panel, inplace=False) -> Panel``. ``fields_group`` picks the block it touches: "feature", "label" or
None (both), as Qlib's ("feature", name) / ("label", name) column groups. With ``inplace=True`` a processor may
overwrite the panel's blocks when they are writeable (the handler passes read-only views of data it must keep).

``to_state()`` gives a JSON-serialisable dict (class, constructor kwargs, fitted statistics) and
``processor_from_state`` rebuilds an identical processor, so scoring applies exactly the training transform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from processing import crosssection as cs
from processing.normalizers import CSRankNorm, CSZScoreNorm, MinMaxNorm, RobustZScoreNorm, ZScoreNorm
from processing.panel import GROUPS, Panel
from processing.processor_base import ROW_CHUNK, Processor, groups_of, rows_where, writable


class DropnaProcessor(Processor):
    """Drop rows with a NaN in any column of the group (inf is not NaN, as in pandas)."""

    name = "DropnaProcessor"

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        drop = np.zeros(panel.n_rows, dtype=bool)
        for g in groups_of(self.fields_group):
            drop |= rows_where(panel.block(g), np.isnan)
        return panel.take(~drop) if drop.any() else panel


class DropnaLabel(DropnaProcessor):
    """Drop rows whose label is NaN; learning only (rows are chosen by the label)."""

    name = "DropnaLabel"

    def __init__(self, fields_group: str | None = "label") -> None:
        super().__init__(fields_group)

    def is_for_infer(self) -> bool:
        return False


class ProcessInf(Processor):
    """Every ±inf becomes the mean of the finite values of its column on its day (all columns)."""

    name = "ProcessInf"

    def __init__(self) -> None:
        super().__init__(None)

    def params(self) -> dict[str, Any]:
        return {}

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        starts = panel.day_starts()
        for g in GROUPS:
            block = panel.block(g)
            if block.size and rows_where(block, np.isinf).any():
                block = writable(block, inplace)
                cs.replace_inf_with_day_mean(block, starts)
                panel = panel.with_block(g, block)
        return panel


class Fillna(Processor):
    """NaN becomes ``fill_value`` (inf is kept)."""

    name = "Fillna"

    def __init__(self, fields_group: str | None = None, fill_value: float = 0) -> None:
        super().__init__(fields_group)
        self.fill_value = float(fill_value)

    def params(self) -> dict[str, Any]:
        return {"fields_group": self.fields_group, "fill_value": self.fill_value}

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        fill = np.float32(self.fill_value)
        for g in groups_of(self.fields_group):
            block = panel.block(g)
            if not (inplace and block.flags.writeable):
                # A copy is needed to write: make it only when there is a NaN to fill.
                if not rows_where(block, np.isnan).any():
                    continue
                block = writable(block, inplace)
            # One pass: each chunk's NaN mask is both the test and the fill.
            for lo in range(0, len(block), ROW_CHUNK):
                part = block[lo : lo + ROW_CHUNK]
                nan = np.isnan(part)
                if nan.any():
                    np.copyto(part, fill, where=nan)
            panel = panel.with_block(g, block)
        return panel


class FilterCol(Processor):
    """Keep the group's columns named in ``col_list`` and every column outside the group, in the original order.

    Unlike Qlib, which silently ignores them, names found in no column are an error.
    """

    name = "FilterCol"

    def __init__(self, fields_group: str | None = "feature", col_list: Sequence[str] = ()) -> None:
        super().__init__(fields_group)
        if isinstance(col_list, str):
            raise ValueError(f"FilterCol col_list must be a list of column names, got the string {col_list!r}")
        self.col_list = [str(c) for c in col_list]

    def params(self) -> dict[str, Any]:
        return {"fields_group": self.fields_group, "col_list": list(self.col_list)}

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        present = set(panel.feature_names) | set(panel.label_names)
        missing = [c for c in self.col_list if c not in present]
        if missing:
            raise ValueError(f"FilterCol: column(s) {missing} are not in the data")
        wanted = set(self.col_list)
        for g in groups_of(self.fields_group):
            names = panel.block_names(g)
            keep = [j for j, c in enumerate(names) if c in wanted]
            if len(keep) != len(names):
                panel = panel.with_block(g, panel.block(g)[:, keep], [names[j] for j in keep])
        return panel


PROCESSORS: dict[str, type[Processor]] = {
    cls.name: cls
    for cls in (
        DropnaProcessor,
        DropnaLabel,
        ProcessInf,
        Fillna,
        ZScoreNorm,
        RobustZScoreNorm,
        MinMaxNorm,
        CSZScoreNorm,
        CSRankNorm,
        FilterCol,
    )
}


def make_processor(name: str, **kwargs: Any) -> Processor:
    """A processor by its Qlib class name; unknown names or arguments raise ValueError."""
    cls = PROCESSORS.get(name)
    if cls is None:
        raise ValueError(f"unknown processor {name!r}; valid processors: {sorted(PROCESSORS)}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"processor {name}: bad arguments {sorted(kwargs)} ({exc})") from None


def processor_from_state(state: dict[str, Any]) -> Processor:
    """Rebuild a processor from ``Processor.to_state()``."""
    if not isinstance(state, dict) or "class" not in state:
        raise ValueError(f"processor state must be a dict with a 'class' entry, got {state!r:.80}")
    proc = make_processor(state["class"], **(state.get("kwargs") or {}))
    if state.get("fitted") is not None:
        proc.load_fitted_state(state["fitted"])
    return proc
