"""Qlib's normalizing processors: the fitted column-wise ones (ZScoreNorm, RobustZScoreNorm, MinMaxNorm: statistics
from the fit window) and the per-day cross-sectional ones (CSZScoreNorm, CSRankNorm)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from features.dates import DateLike, to_day
from processing import crosssection as cs
from processing.panel import Panel
from processing.processor_base import (
    EPS,
    RANK_CENTRE,
    RANK_SCALE,
    Processor,
    check_group,
    column_stats,
    groups_of,
    nanmedian_rows,
    writable,
)
from processing.serial import decode_floats, encode_floats

# Rows per chunk of a fitted column-wise transform: a few hundred KiB of a 360-column float32 block.
_APPLY_ROWS = 256


class _FittedColumnwise(Processor):
    """Per-column statistics learned on the rows dated in [fit_start_time, fit_end_time] (inclusive)."""

    needs_fit_window = True
    stat_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        fit_start_time: DateLike | None = None,
        fit_end_time: DateLike | None = None,
        fields_group: str | None = None,
    ) -> None:
        super().__init__(fields_group)
        self.fit_start_time = None if fit_start_time is None else str(to_day(fit_start_time, "fit_start_time"))
        self.fit_end_time = None if fit_end_time is None else str(to_day(fit_end_time, "fit_end_time"))
        self.columns: dict[str, list[str]] | None = None
        self.stats: dict[str, dict[str, np.ndarray]] = {}

    def params(self) -> dict[str, Any]:
        return {
            "fit_start_time": self.fit_start_time,
            "fit_end_time": self.fit_end_time,
            "fields_group": self.fields_group,
        }

    def _fit_block(self, block: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _apply_block(self, block: np.ndarray, stats: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def fit(self, panel: Panel) -> None:
        if self.fit_start_time is None or self.fit_end_time is None:
            raise ValueError(f"{self.name} needs fit_start_time and fit_end_time (got {self.params()})")
        window = panel.date_slice(self.fit_start_time, self.fit_end_time)
        if window.n_rows == 0:
            raise ValueError(f"{self.name}: no rows in the fit window {self.fit_start_time}..{self.fit_end_time}")
        self.columns = {g: list(window.block_names(g)) for g in groups_of(self.fields_group)}
        self.stats = {g: self._fit_block(window.block(g)) for g in self.columns}

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        if self.columns is None:
            raise ValueError(f"{self.name} is not fitted: call fit() or restore a fitted state first")
        for g, names in self.columns.items():
            if list(panel.block_names(g)) != names:
                raise ValueError(
                    f"{self.name} was fitted on {g} columns {names[:5]}... ({len(names)}) but got "
                    f"{list(panel.block_names(g))[:5]}... ({len(panel.block_names(g))})"
                )
            block = writable(panel.block(g), inplace)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # inf / NaN propagate as in Qlib
                # Element-wise per row, so applied to cache-sized row chunks: each value is read from memory once
                # for the two or three operations, not once per operation (same values, same order).
                for lo in range(0, len(block), _APPLY_ROWS):
                    self._apply_block(block[lo : lo + _APPLY_ROWS], self.stats[g])
            panel = panel.with_block(g, block)
        return panel

    def fitted_state(self) -> dict[str, Any] | None:
        if self.columns is None:
            return None
        return {
            "columns": self.columns,
            "stats": {g: {k: encode_floats(v) for k, v in st.items()} for g, st in self.stats.items()},
        }

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        try:
            columns = {g: list(names) for g, names in state["columns"].items()}
            stats = {g: {k: decode_floats(state["stats"][g][k], k) for k in self.stat_names} for g in columns}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{self.name}: malformed fitted state ({exc!r})") from None
        for g, names in columns.items():
            check_group(g)
            if any(len(v) != len(names) for v in stats[g].values()):
                raise ValueError(f"{self.name}: fitted statistics for {g} do not match its {len(names)} columns")
        self.columns, self.stats = columns, stats


class ZScoreNorm(_FittedColumnwise):
    """(x - mean) / std with the fit window's nanmean / nanstd (ddof=0); columns with std == 0 are left as is."""

    name = "ZScoreNorm"
    stat_names = ("mean", "std")

    def _fit_block(self, block: np.ndarray) -> dict[str, np.ndarray]:
        # float64 accumulation: Qlib sums float32 pairwise; this is closer to the exact value than either.
        mean, std, lo, hi = column_stats(
            block,
            lambda c: [
                np.nanmean(c, axis=1, dtype=np.float64),
                np.nanstd(c, axis=1, dtype=np.float64),
                np.nanmin(c, axis=1),
                np.nanmax(c, axis=1),
            ],
        )
        # A constant column has exactly zero spread (float rounding of the mean must not hide that).
        ignore = (std == 0) | (lo == hi)
        return {
            "mean": np.where(ignore, 0, mean).astype(np.float32),
            "std": np.where(ignore, 1, std).astype(np.float32),
        }

    def _apply_block(self, block: np.ndarray, stats: dict[str, np.ndarray]) -> None:
        block -= stats["mean"]
        block /= stats["std"]


class RobustZScoreNorm(_FittedColumnwise):
    """(x - median) / ((MAD + EPS) * 1.4826) with the fit window's nanmedian, then clip to [-3, 3] if asked."""

    name = "RobustZScoreNorm"
    stat_names = ("median", "scale")

    def __init__(
        self,
        fit_start_time: DateLike | None = None,
        fit_end_time: DateLike | None = None,
        fields_group: str | None = None,
        clip_outlier: bool = True,
    ) -> None:
        super().__init__(fit_start_time, fit_end_time, fields_group)
        self.clip_outlier = bool(clip_outlier)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "clip_outlier": self.clip_outlier}

    def _fit_block(self, block: np.ndarray) -> dict[str, np.ndarray]:
        # float32 throughout, as Qlib: the median is exact and the MAD of a constant column is exactly 0.
        def median_mad(cols: np.ndarray) -> list[np.ndarray]:
            med = nanmedian_rows(cols)
            return [med, nanmedian_rows(np.abs(cols - med[:, None]))]

        median, mad = column_stats(block, median_mad)
        scale = (mad + np.float32(EPS)) * np.float32(1.4826)
        return {"median": median, "scale": scale.astype(np.float32)}

    def _apply_block(self, block: np.ndarray, stats: dict[str, np.ndarray]) -> None:
        block -= stats["median"]
        block /= stats["scale"]
        if self.clip_outlier:
            np.clip(block, -3, 3, out=block)


class MinMaxNorm(_FittedColumnwise):
    """(x - min) / (max - min) with the fit window's nanmin / nanmax; columns with min == max are left as is."""

    name = "MinMaxNorm"
    stat_names = ("min", "max")

    def _fit_block(self, block: np.ndarray) -> dict[str, np.ndarray]:
        lo, hi = column_stats(block, lambda c: [np.nanmin(c, axis=1), np.nanmax(c, axis=1)])
        ignore = lo == hi
        return {"min": np.where(ignore, 0, lo).astype(np.float32), "max": np.where(ignore, 1, hi).astype(np.float32)}

    def _apply_block(self, block: np.ndarray, stats: dict[str, np.ndarray]) -> None:
        block -= stats["min"]
        block /= stats["max"] - stats["min"]


class CSZScoreNorm(Processor):
    """Per day: "zscore" (x - mean) / std (ddof=1), or "robust" clip((x - median) / MAD / 1.4826, -3, 3)."""

    name = "CSZScoreNorm"
    methods: ClassVar[tuple[str, ...]] = ("zscore", "robust")

    def __init__(self, fields_group: str | None = None, method: str = "zscore") -> None:
        super().__init__(fields_group)
        if method not in self.methods:
            raise ValueError(f"CSZScoreNorm method={method!r} is not one of {list(self.methods)}")
        self.method = method

    def params(self) -> dict[str, Any]:
        return {"fields_group": self.fields_group, "method": self.method}

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        starts = panel.day_starts()
        for g in groups_of(self.fields_group):
            block = panel.block(g)
            if self.method == "zscore":
                out = cs.zscore(block, starts)
            else:
                out = np.empty_like(block, dtype=np.float32)
                for j in range(block.shape[1]):
                    out[:, j] = cs.robust_zscore_column(block[:, j], starts)
            panel = panel.with_block(g, out)
        return panel


class CSRankNorm(Processor):
    """Per day: (percentile rank - 0.5) * 3.46, ties averaged, NaN kept."""

    name = "CSRankNorm"

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        starts = panel.day_starts()
        for g in groups_of(self.fields_group):
            block = panel.block(g)
            out = np.empty_like(block, dtype=np.float32)
            for j in range(block.shape[1]):
                out[:, j] = (cs.rank_pct_column(block[:, j], starts) - RANK_CENTRE) * RANK_SCALE
            panel = panel.with_block(g, out)
        return panel
