"""Quality of a computed feature window, per column: the numbers behind the feature sets' asset checks.

A column is *expected* to have values on a row when the row has a bar carrying every field the column's
expression reads and the instrument has the history and future the expression reaches (its lookback and
horizon in trading days, from the first and last bar read). A column that has such rows in the window and is
null on all of them is an unexpected all-null column: the check fails. A column that reads a field the bars do
not carry (VWAP0 on data without vwap) or that has no such row (ROC60 on an instrument's first days, LABEL0 on
the last two days) is not judged. An expression can still be null on every eligible row of a tiny window for
honest reasons (a 60-day correlation of a price that did not move), so the check is not blocking.

The second check reports, per column, the null fraction of the window's rows and the number of +-inf values,
and warns (without failing the run) when a column's null fraction among its eligible rows exceeds
``NULL_FRACTION_WARN`` or its inf values exceed ``INF_FRACTION_WARN`` of the rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from features.catalog import FeatureSetSpec, unbounded

NULL_FRACTION_WARN = 0.10  # of the rows a column can have values on
INF_FRACTION_WARN = 0.001  # of the window's rows
MAX_LISTED = 20


@dataclass(frozen=True)
class ColumnStats:
    column: str
    rows: int
    nulls: int
    infs: int
    eligible: int  # rows on which the column is expected to have a value
    eligible_values: int  # ... and has one (not null, not NaN)
    absent_fields: tuple[str, ...] = ()  # fields the bars do not carry: the column is expected to be null

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def eligible_null_fraction(self) -> float:
        return 1.0 - self.eligible_values / self.eligible if self.eligible else 0.0

    @property
    def unexpected_all_null(self) -> bool:
        return not self.absent_fields and self.eligible > 0 and self.eligible_values == 0


@dataclass
class WindowQuality:
    feature_set: str
    rows: int
    columns: list[ColumnStats] = field(default_factory=list)

    @property
    def all_null(self) -> list[ColumnStats]:
        return [c for c in self.columns if c.unexpected_all_null]

    @property
    def expected_null(self) -> list[ColumnStats]:
        return [c for c in self.columns if c.absent_fields]

    @property
    def warned(self) -> list[ColumnStats]:
        inf_limit = INF_FRACTION_WARN * self.rows
        return [
            c
            for c in self.columns
            if not c.absent_fields and (c.eligible_null_fraction > NULL_FRACTION_WARN or c.infs > inf_limit)
        ]

    def table_markdown(self) -> str:
        lines = ["| column | null fraction | inf | null fraction where expected | note |", "|---|---|---|---|---|"]
        for c in self.columns:
            note = f"reads absent {', '.join('$' + f for f in c.absent_fields)}" if c.absent_fields else ""
            if c.unexpected_all_null:
                note = "all null where values are expected"
            elif not c.absent_fields and c.eligible == 0:
                note = "no row with the history it needs"
            lines.append(f"| {c.column} | {c.null_fraction:.4f} | {c.infs} | {c.eligible_null_fraction:.4f} | {note} |")
        return "\n".join(lines)


def present_fields(bars: pl.DataFrame, wanted: Sequence[str]) -> set[str]:
    """The fields of ``wanted`` that ``bars`` has with at least one value."""
    return {f for f in wanted if f in bars.columns and bars[f].null_count() < bars.height}


def inspect_window(
    spec: FeatureSetSpec,
    frame: pl.DataFrame,
    bars: pl.DataFrame,
    calendar: Sequence,
    start: dt.date | None = None,
) -> WindowQuality:
    """Per-column statistics of ``frame``'s rows dated from ``start`` on (all rows without it: the window's
    computed rows) against the ``bars`` it was computed from (all bars read, history included) on ``calendar``
    (the trading days those bars span).

    The joins run on the frame's keys alone and the window is a row mask, so the feature columns are read where
    they lie, never copied (a filtered or joined copy of a 360-column window cost more than the statistics)."""
    in_window = pl.lit(True) if start is None else pl.col("date") >= start
    keys = frame.select("instrument", "date", in_window.alias("_in"))
    n_rows = int(keys["_in"].sum()) if keys.height else 0
    quality = WindowQuality(spec.name, n_rows)
    if n_rows == 0:
        return quality
    present = present_fields(bars, spec.fields)
    cal = pl.DataFrame({"date": list(calendar)}, schema={"date": pl.Date}).with_row_index("idx")
    bar_idx = bars.select("instrument", "date").join(cal, on="date")
    bounds = bar_idx.group_by("instrument").agg(pl.col("idx").min().alias("_first"), pl.col("idx").max().alias("_last"))
    have = bars.select(
        "instrument", "date", *(pl.col(f).is_not_null().alias(f"_has_{f}") for f in sorted(present))
    ).with_columns(pl.lit(True).alias("_bar"))
    keyed = (
        keys.join(cal, on="date", how="left", maintain_order="left")
        .join(bounds, on="instrument", how="left", maintain_order="left")
        .join(have, on=["instrument", "date"], how="left", maintain_order="left")
        .with_columns(
            (pl.col("idx").cast(pl.Int64) - pl.col("_first").cast(pl.Int64)).alias("_since"),
            (pl.col("_last").cast(pl.Int64) - pl.col("idx").cast(pl.Int64)).alias("_until"),
        )
    )
    cap = unbounded()
    groups: dict[tuple, list[str]] = defaultdict(list)
    for col in spec.column_names:
        lookback, horizon = spec.reaches[col]
        groups[(0 if lookback >= cap else lookback, horizon, spec.column_fields[col] & present)].append(col)
    masks, mask_of = [], {}
    for i, (key, cols) in enumerate(groups.items()):
        lookback, horizon, fields = key
        cond = pl.col("_in") & (pl.col("_since") >= lookback) & (pl.col("_until") >= horizon)
        cond = cond & pl.col("_bar").fill_null(False)
        for f in sorted(fields):
            cond = cond & pl.col(f"_has_{f}").fill_null(False)
        masks.append(cond.alias(f"_m{i}"))
        mask_of.update({c: f"_m{i}" for c in cols})
    # The masks beside the feature columns: same rows in the same order (the joins keep the left order).
    rows = frame.select(spec.column_names).hstack(keyed.select(pl.col("_in"), *masks))
    # ``mask & x.is_not_nan()`` is null where x is null and sums as false: it counts the rows with a value.
    # Eligible rows are counted once per mask, not per column.
    w = pl.col("_in")
    aggs = [pl.col(f"_m{i}").sum().alias(f"_m{i}\0eligible") for i in range(len(masks))]
    for col in spec.column_names:
        x, m = pl.col(col), pl.col(mask_of[col])
        aggs += [
            (w & x.is_not_nan()).sum().alias(f"{col}\0present"),
            (w & x.is_infinite()).sum().alias(f"{col}\0infs"),
            (m & x.is_not_nan()).sum().alias(f"{col}\0values"),
        ]
    stats = rows.select(aggs).row(0, named=True)
    for col in spec.column_names:
        absent = tuple(sorted(spec.column_fields[col] - present))
        quality.columns.append(
            ColumnStats(
                col,
                n_rows,
                n_rows - int(stats[f"{col}\0present"]),
                int(stats[f"{col}\0infs"]),
                int(stats[f"{mask_of[col]}\0eligible"]),
                int(stats[f"{col}\0values"]),
                absent,
            )
        )
    return quality


def listed(columns: Sequence[ColumnStats]) -> str:
    names = [c.column for c in columns[:MAX_LISTED]]
    return ", ".join(names) + (f" and {len(columns) - MAX_LISTED} more" if len(columns) > MAX_LISTED else "")
