"""Qlib's data processors (qlib/data/dataset/processor.py, 0.9.x semantics) over a :class:`Panel`.

Each processor has ``fit(panel)`` (a no-op unless it learns statistics from the fit window) and
``transform(panel, inplace=False) -> Panel``. ``fields_group`` picks the block it touches: "feature", "label" or
None (both), as Qlib's ("feature", name) / ("label", name) column groups. With ``inplace=True`` a processor may
overwrite the panel's blocks when they are writeable (the handler passes read-only views of data it must keep).

``to_state()`` gives a JSON-serialisable dict (class, constructor kwargs, fitted statistics) and
``processor_from_state`` rebuilds an identical processor, so scoring applies exactly the training transform.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from processing import crosssection as cs
from processing.panel import GROUPS, DateLike, Panel, to_day
from processing.serial import decode_floats, encode_floats

# Qlib's EPS (qlib/constant.py), added to the MAD of RobustZScoreNorm.
EPS = 1e-12
# Rank-to-unit-std constants of CSRankNorm (the centre and 1/std of a uniform rank).
RANK_CENTRE, RANK_SCALE = 0.5, 3.46
_ROW_CHUNK = 100_000
_COL_CHUNK = 64
_TILE_ROWS = 1024


def _check_group(fields_group: str | None) -> str | None:
    if fields_group is not None and fields_group not in GROUPS:
        raise ValueError(f"fields_group={fields_group!r} is not one of 'feature', 'label' or None")
    return fields_group


def _groups(fields_group: str | None) -> tuple[str, ...]:
    return GROUPS if fields_group is None else (fields_group,)


def _writable(block: np.ndarray, inplace: bool) -> np.ndarray:
    return block if inplace and block.flags.writeable else block.copy()


def _rows_where(block: np.ndarray, test: Any) -> np.ndarray:
    """Boolean per row: ``test(values)`` holds for any column (row-chunked to bound the temporary)."""
    out = np.zeros(len(block), dtype=bool)
    for lo in range(0, len(block), _ROW_CHUNK):
        out[lo : lo + _ROW_CHUNK] = test(block[lo : lo + _ROW_CHUNK]).any(axis=1)
    return out


def _column_stats(block: np.ndarray, func: Any) -> list[np.ndarray]:
    """Per-column statistics, float32. ``func(cols)`` gets a chunk of columns laid out as contiguous rows and
    returns a list of per-column arrays; the block is transposed once per chunk for all of them."""
    outs: list[np.ndarray] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as in Qlib
        for j0 in range(0, block.shape[1], _COL_CHUNK):
            sl = slice(j0, min(j0 + _COL_CHUNK, block.shape[1]))
            for k, values in enumerate(func(_transposed(block, sl))):
                if k == len(outs):
                    outs.append(np.empty(block.shape[1], dtype=np.float32))
                outs[k][sl] = values
    return outs


def _transposed(block: np.ndarray, sl: slice) -> np.ndarray:
    """``block[:, sl].T`` as a C-contiguous copy, moved in cache-sized row tiles (4x faster than one copy)."""
    out = np.empty((sl.stop - sl.start, len(block)), dtype=block.dtype)
    for r0 in range(0, len(block), _TILE_ROWS):
        out[:, r0 : r0 + _TILE_ROWS] = block[r0 : r0 + _TILE_ROWS, sl].T
    return out


def _nanmedian_rows(cols: np.ndarray) -> np.ndarray:
    """``np.nanmedian(cols, axis=1)`` for float32 rows, bit for bit, with one selection per row."""
    out = np.empty(len(cols), dtype=np.float32)
    for i, row in enumerate(cols):
        v = row[~np.isnan(row)]
        n = len(v)
        if n == 0:
            out[i] = np.nan
            continue
        k = n // 2
        v.partition(k)
        # Even count: the lower middle is the largest value left of the k-th (numpy averages in float32).
        out[i] = v[k] if n % 2 else (v[:k].max() + v[k]) / np.float32(2)
    return out


class Processor:
    """Base class: stateless, usable for inference, applies to ``fields_group``."""

    name: ClassVar[str] = "Processor"
    needs_fit_window: ClassVar[bool] = False

    def __init__(self, fields_group: str | None = None) -> None:
        self.fields_group = _check_group(fields_group)

    def params(self) -> dict[str, Any]:
        """Constructor kwargs that rebuild this processor (JSON-serialisable)."""
        return {"fields_group": self.fields_group}

    def is_for_infer(self) -> bool:
        return True

    def fit(self, panel: Panel) -> None:  # noqa: B027 - stateless processors learn nothing
        """Learn statistics (no-op for stateless processors)."""

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        raise NotImplementedError

    def fitted_state(self) -> dict[str, Any] | None:
        return None

    def load_fitted_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - nothing to restore by default
        """Restore what ``fitted_state`` returned."""

    def to_state(self) -> dict[str, Any]:
        return {"class": self.name, "kwargs": self.params(), "fitted": self.fitted_state()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args})"


class DropnaProcessor(Processor):
    """Drop rows with a NaN in any column of the group (inf is not NaN, as in pandas)."""

    name = "DropnaProcessor"

    def transform(self, panel: Panel, *, inplace: bool = False) -> Panel:
        drop = np.zeros(panel.n_rows, dtype=bool)
        for g in _groups(self.fields_group):
            drop |= _rows_where(panel.block(g), np.isnan)
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
            if block.size and _rows_where(block, np.isinf).any():
                block = _writable(block, inplace)
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
        for g in _groups(self.fields_group):
            block = panel.block(g)
            if not _rows_where(block, np.isnan).any():
                continue
            block = _writable(block, inplace)
            for lo in range(0, len(block), _ROW_CHUNK):
                part = block[lo : lo + _ROW_CHUNK]
                np.copyto(part, np.float32(self.fill_value), where=np.isnan(part))
            panel = panel.with_block(g, block)
        return panel


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
        self.columns = {g: list(window.block_names(g)) for g in _groups(self.fields_group)}
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
            block = _writable(panel.block(g), inplace)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # inf / NaN propagate as in Qlib
                self._apply_block(block, self.stats[g])
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
            _check_group(g)
            if any(len(v) != len(names) for v in stats[g].values()):
                raise ValueError(f"{self.name}: fitted statistics for {g} do not match its {len(names)} columns")
        self.columns, self.stats = columns, stats


class ZScoreNorm(_FittedColumnwise):
    """(x - mean) / std with the fit window's nanmean / nanstd (ddof=0); columns with std == 0 are left as is."""

    name = "ZScoreNorm"
    stat_names = ("mean", "std")

    def _fit_block(self, block: np.ndarray) -> dict[str, np.ndarray]:
        # float64 accumulation: Qlib sums float32 pairwise; this is closer to the exact value than either.
        mean, std, lo, hi = _column_stats(
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
            med = _nanmedian_rows(cols)
            return [med, _nanmedian_rows(np.abs(cols - med[:, None]))]

        median, mad = _column_stats(block, median_mad)
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
        lo, hi = _column_stats(block, lambda c: [np.nanmin(c, axis=1), np.nanmax(c, axis=1)])
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
        for g in _groups(self.fields_group):
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
        for g in _groups(self.fields_group):
            block = panel.block(g)
            out = np.empty_like(block, dtype=np.float32)
            for j in range(block.shape[1]):
                out[:, j] = (cs.rank_pct_column(block[:, j], starts) - RANK_CENTRE) * RANK_SCALE
            panel = panel.with_block(g, out)
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
        for g in _groups(self.fields_group):
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
