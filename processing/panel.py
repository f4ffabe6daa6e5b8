"""The in-memory panel the processors work on: numpy blocks sorted by (date, instrument).

Qlib's handlers keep one pandas frame with ("feature", name) / ("label", name) columns indexed by
(datetime, instrument). Here the same data is two float32 blocks (``features`` and ``labels``) plus per-row keys,
sorted by date then instrument, so that every day is a contiguous run of rows: cross-sectional kernels work on
day boundaries and a date range is a plain slice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from features.dates import DateLike, to_day

GROUPS = ("feature", "label")
# Feature columns are copied out of polars in this many blocks, to bound the temporary memory.
_COLUMN_BLOCKS = 4


@dataclass
class Panel:
    """Rows sorted by (date, instrument); ``row_ids`` remember each row's position in the raw (DK_R) panel."""

    features: np.ndarray  # float32 [n_rows, n_features]
    labels: np.ndarray  # float32 [n_rows, n_labels]
    feature_names: list[str]
    label_names: list[str]
    dates: np.ndarray  # datetime64[D] [n_rows], non-decreasing
    inst_codes: np.ndarray  # int32 [n_rows], index into instrument_names
    instrument_names: np.ndarray  # str, sorted, unique
    row_ids: np.ndarray  # int64 [n_rows]

    @property
    def n_rows(self) -> int:
        return len(self.dates)

    def block(self, group: str) -> np.ndarray:
        return self.features if group == "feature" else self.labels

    def block_names(self, group: str) -> list[str]:
        return self.feature_names if group == "feature" else self.label_names

    def with_block(self, group: str, values: np.ndarray, names: list[str] | None = None) -> Panel:
        if group == "feature":
            return replace(self, features=values, feature_names=self.feature_names if names is None else names)
        return replace(self, labels=values, label_names=self.label_names if names is None else names)

    def take(self, index: np.ndarray) -> Panel:
        """Rows by position or boolean mask, order kept (copies the blocks)."""
        return replace(
            self,
            features=self.features[index],
            labels=self.labels[index],
            dates=self.dates[index],
            inst_codes=self.inst_codes[index],
            row_ids=self.row_ids[index],
        )

    def date_bounds(self, start: DateLike | None, end: DateLike | None) -> tuple[int, int]:
        """Row range [lo, hi) of the days in [start, end] (both inclusive, None = open)."""
        lo = 0 if start is None else int(np.searchsorted(self.dates, to_day(start, "start"), side="left"))
        hi = self.n_rows if end is None else int(np.searchsorted(self.dates, to_day(end, "end"), side="right"))
        return lo, max(lo, hi)

    def date_slice(self, start: DateLike | None, end: DateLike | None) -> Panel:
        """The days in [start, end] as views (no copy)."""
        lo, hi = self.date_bounds(start, end)
        return self.take(slice(lo, hi))

    def day_starts(self) -> np.ndarray:
        """First row of each day (int64), for ``np.ufunc.reduceat`` over days."""
        if self.n_rows == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(([0], np.flatnonzero(self.dates[1:] != self.dates[:-1]) + 1)).astype(np.int64)

    def unique_dates(self) -> np.ndarray:
        return self.dates[self.day_starts()]

    def instruments(self) -> np.ndarray:
        """Instrument name of each row."""
        return self.instrument_names[self.inst_codes]

    def frozen(self) -> Panel:
        """Read-only views of the blocks: in-place processors then copy before writing."""
        feats, labs = self.features.view(), self.labels.view()
        feats.flags.writeable = False
        labs.flags.writeable = False
        return replace(self, features=feats, labels=labs)

    def to_frame(self) -> pl.DataFrame:
        """The panel as a polars frame: instrument, date, features..., labels... (Float32, NaN kept)."""
        cols: dict[str, pl.Series] = {
            "instrument": pl.Series("instrument", self.instruments(), dtype=pl.Utf8),
            "date": pl.Series("date", self.dates, dtype=pl.Date),
        }
        for j, name in enumerate(self.feature_names):
            cols[name] = pl.Series(name, self.features[:, j], dtype=pl.Float32)
        for j, name in enumerate(self.label_names):
            cols[name] = pl.Series(name, self.labels[:, j], dtype=pl.Float32)
        return pl.DataFrame(cols)


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(f"{what} frame lacks column(s) {shown}; it has {len(frame.columns)} columns")


def member_rows(keys: pl.LazyFrame, membership: pl.DataFrame) -> pl.LazyFrame:
    """The (instrument, date) keys that fall inside one of the instrument's membership ranges."""
    _require_columns(membership, ("instrument", "start_date", "end_date"), "membership")
    spans = membership.lazy().select("instrument", "start_date", "end_date")
    inside = (
        keys.select("instrument", "date")
        .join(spans, on="instrument", how="inner")
        .filter((pl.col("date") >= pl.col("start_date")) & (pl.col("date") <= pl.col("end_date")))
        .select("instrument", "date")
        .unique()
    )
    return keys.join(inside, on=["instrument", "date"], how="semi")


def panel_from_frames(
    features: pl.DataFrame,
    labels: pl.DataFrame | None,
    *,
    feature_columns: Sequence[str] | None = None,
    label_columns: Sequence[str] = ("LABEL0",),
    membership: pl.DataFrame | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
) -> Panel:
    """Build the raw (DK_R) panel.

    Rows are the feature frame's rows, kept when their date is in [start, end] and, with ``membership``, when
    the instrument is a member that day (Qlib filters by market membership after computing the features).
    Labels are joined on (instrument, date); a row without a label gets NaN, and nulls become NaN.
    """
    _require_columns(features, ("instrument", "date"), "features")
    if feature_columns is None:
        feature_columns = [c for c in features.columns if c not in ("instrument", "date")]
    feature_columns = list(feature_columns)
    _require_columns(features, feature_columns, "features")
    label_columns = list(label_columns)
    start_d, end_d = to_day(start, "start"), to_day(end, "end")

    keys = features.lazy().select("instrument", "date").with_row_index("_row")
    if start_d is not None:
        keys = keys.filter(pl.col("date") >= pl.lit(start_d.astype(dt.date)))
    if end_d is not None:
        keys = keys.filter(pl.col("date") <= pl.lit(end_d.astype(dt.date)))
    if membership is not None:
        keys = member_rows(keys, membership)
    keys_df = keys.sort("date", "instrument").collect()
    dup = keys_df.filter(pl.struct("instrument", "date").is_duplicated())
    if dup.height:
        first = dup.row(0, named=True)
        raise ValueError(
            f"features has {dup.height} duplicated (instrument, date) rows, e.g. {first['instrument']} {first['date']}"
        )
    index = keys_df["_row"].to_numpy().astype(np.int64)

    # Polars gathers a block of columns in the panel's row order and writes it out row-major (nulls as NaN);
    # each block then lands in its strip of the float32 block, a row-by-row copy. Blocks bound the temporary
    # memory to a quarter of the frame; a per-column gather into a column-major scratch, transposed in numpy,
    # cost 2-4x more on a test segment's 360 columns.
    identity = len(index) == features.height and bool((index == np.arange(len(index))).all())
    rows = None if identity else pl.Series("_row", index)
    feats = np.empty((len(index), len(feature_columns)), dtype=np.float32)
    chunk_size = max(1, -(-len(feature_columns) // _COLUMN_BLOCKS))
    for j0 in range(0, len(feature_columns), chunk_size):
        chunk = feature_columns[j0 : j0 + chunk_size]
        block = features.select(pl.col(c).cast(pl.Float32) for c in chunk)
        if rows is not None:
            block = block[rows]
        feats[:, j0 : j0 + len(chunk)] = block.to_numpy(order="c")
        del block

    labs = np.full((len(index), len(label_columns)), np.nan, dtype=np.float32)
    if labels is not None and label_columns:
        _require_columns(labels, ("instrument", "date", *label_columns), "labels")
        lab_keys = labels.select("instrument", "date")
        if lab_keys.is_duplicated().any():
            raise ValueError("labels has duplicated (instrument, date) rows")
        joined = (
            keys_df.select("instrument", "date")
            .with_row_index("_pos")
            .join(
                labels.select("instrument", "date", *(pl.col(c).cast(pl.Float32) for c in label_columns)),
                on=["instrument", "date"],
                how="left",
            )
            .sort("_pos")
        )
        labs[:] = joined.select(label_columns).to_numpy()

    ranked = keys_df.select((pl.col("instrument").rank("dense") - 1).cast(pl.Int32).alias("code"))
    names = keys_df["instrument"].unique().sort().to_numpy().astype(str)
    return Panel(
        features=feats,
        labels=labs,
        feature_names=feature_columns,
        label_names=label_columns,
        dates=keys_df["date"].to_numpy().astype("datetime64[D]"),
        inst_codes=ranked["code"].to_numpy().astype(np.int32),
        instrument_names=names,
        row_ids=np.arange(len(index), dtype=np.int64),
    )
