"""Stock-to-concept memberships, the extra input of HIST's predefined-concept module.

A ``Concepts`` is a 0/1 matrix over instruments x concepts plus where it came from: a file beside the source
data (``concepts.csv``: instrument, concept; several rows per instrument allowed), the synthetic market's
sectors, or concepts derived from the train segment's returns when the source has none. HIST reads, per trading
day, the rows of that day's stocks; an instrument the matrix does not know belongs to no concept.

``derive_concepts`` is the fallback (the CSI300 data has no concepts file): clusters of residual daily-return
correlation, computed from the train segment's returns only (k-means on the rows of the correlation matrix, numpy,
deterministic for a seed). See its docstring for the steps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

MIN_PER_CLUSTER = 5
CLIP_SD = 4.0  # winsorise standardised returns: one bad print or a limit-move streak must not make a cluster


@dataclass(frozen=True)
class Concepts:
    instruments: np.ndarray  # str [n_instruments], unique
    matrix: np.ndarray  # float32 [n_instruments, n_concepts], 1 where the instrument belongs to the concept
    names: tuple[str, ...]  # [n_concepts]
    source: str  # one line for metadata and the results table: the file, "synthetic sectors", or how derived

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2 or self.matrix.shape != (len(self.instruments), len(self.names)):
            raise ValueError(
                f"concept matrix shape {self.matrix.shape} does not match {len(self.instruments)} instruments x "
                f"{len(self.names)} concepts"
            )
        if len(np.unique(self.instruments)) != len(self.instruments):
            raise ValueError("concept instruments must be unique")

    @property
    def n_concepts(self) -> int:
        return len(self.names)

    def index_of(self, instruments: np.ndarray) -> np.ndarray:
        """Row of each instrument in ``matrix`` (int64), or ``len(self.instruments)`` for an unknown one: the
        caller appends one all-zero row there (Qlib maps unknown stocks to a spare row of its matrix)."""
        order = np.argsort(self.instruments)
        known = self.instruments[order]
        pos = np.searchsorted(known, instruments)
        pos_clipped = np.minimum(pos, len(known) - 1) if len(known) else pos
        hit = (pos < len(known)) & (known[pos_clipped] == instruments) if len(known) else np.zeros(len(pos), bool)
        rows = np.full(len(instruments), len(self.instruments), dtype=np.int64)
        rows[hit] = order[pos_clipped[hit]]
        return rows

    def padded_matrix(self) -> np.ndarray:
        """``matrix`` with one extra all-zero row at the end, for the instruments ``index_of`` does not know."""
        return np.vstack([self.matrix, np.zeros((1, self.n_concepts), dtype=np.float32)]).astype(np.float32)

    def rows_for(self, instruments: np.ndarray) -> np.ndarray:
        """``[len(instruments), n_concepts]`` float32: each instrument's memberships (zeros when unknown)."""
        return self.padded_matrix()[self.index_of(np.asarray(instruments))]

    def members(self) -> pl.DataFrame:
        """The memberships as (instrument, concept) rows, sorted: the long form the warehouse stores."""
        rows, cols = np.nonzero(self.matrix)
        frame = pl.DataFrame(
            {"instrument": self.instruments[rows].astype(str), "concept": np.array(self.names, dtype=str)[cols]},
            schema={"instrument": pl.Utf8, "concept": pl.Utf8},
        )
        return frame.sort("instrument", "concept")

    def sizes(self) -> pl.DataFrame:
        """concept, instruments (members per concept), largest first, then by name."""
        counts = self.matrix.sum(axis=0).astype(np.int64)
        frame = pl.DataFrame(
            {"concept": list(self.names), "instruments": counts}, schema_overrides={"concept": pl.Utf8}
        )
        return frame.sort(["instruments", "concept"], descending=[True, False])

    def covered(self) -> np.ndarray:
        """The instruments in at least one concept."""
        return self.instruments[self.matrix.sum(axis=1) > 0]

    @classmethod
    def from_members(cls, rows: pl.DataFrame, source: str) -> Concepts:
        """From (instrument, concept) rows (repeats count once): instruments and concepts sorted by name."""
        rows = rows.select("instrument", "concept").unique()
        instruments = np.array(sorted(rows["instrument"].unique().to_list()), dtype=object)
        names = tuple(sorted(rows["concept"].unique().to_list()))
        matrix = np.zeros((len(instruments), len(names)), dtype=np.float32)
        if rows.height:
            r = np.searchsorted(instruments.astype(str), rows["instrument"].to_numpy().astype(str))
            c = np.searchsorted(np.array(names, dtype=str), rows["concept"].to_numpy().astype(str))
            matrix[r, c] = 1.0
        return cls(instruments.astype(str), matrix, names, source)


def daily_returns(bars: pl.DataFrame) -> pl.DataFrame:
    """instrument, date, return: each (adjusted) close over the instrument's previous bar's close, minus 1."""
    return (
        bars.sort("instrument", "date")
        .select(
            "instrument",
            "date",
            (pl.col("close") / pl.col("close").shift(1).over("instrument") - 1).alias("return"),
        )
        .filter(pl.col("return").is_not_null() & pl.col("return").is_finite())
    )


def default_min_days(train_days: int) -> int:
    """Train days an instrument needs to be clustered: half a year, or half the segment when that is shorter."""
    return max(20, min(120, train_days // 2))


def derive_concepts(
    returns: pl.DataFrame,
    train_start: dt.date,
    train_end: dt.date,
    n_concepts: int = 20,
    seed: int = 0,
    min_days: int | None = None,
    n_init: int = 10,
) -> Concepts:
    """Concepts as clusters of return co-movement over the train segment [train_start, train_end] only.

    ``returns`` is (instrument, date, return) rows (``daily_returns`` of the bars); rows outside the segment are
    dropped first, so nothing later can change the result. Steps: a [days x instruments] panel; instruments with
    fewer than ``min_days`` returns (default ``default_min_days``) go to no concept; each day's equal-weight mean is
    subtracted (raw correlation is mostly market beta); each instrument's series standardised and clipped at
    ``CLIP_SD``; pairwise correlation over the days both traded (pairs with under ``min_days // 2`` common days
    count as 0); k-means (k-means++ starts, ``n_init`` of them from ``seed``, lowest inertia kept) on the rows of
    that matrix, with ``n_concepts`` clusters or one per ``MIN_PER_CLUSTER`` instruments if that is fewer (2 at
    least). Clusters are numbered by size, largest first. Every instrument with a train return is a row of the
    matrix; the ``source`` line says how it was made and how many instruments were left out.
    """
    train = returns.filter(pl.col("date").is_between(train_start, train_end))
    instruments = np.array(sorted(train["instrument"].unique().to_list()), dtype=str)
    dates = np.array(sorted(train["date"].unique().to_list()), dtype="datetime64[D]")
    panel = np.full((len(dates), len(instruments)), np.nan)
    panel[
        np.searchsorted(dates, train["date"].to_numpy().astype("datetime64[D]")),
        np.searchsorted(instruments, train["instrument"].to_numpy().astype(str)),
    ] = train["return"].to_numpy()
    min_days = default_min_days(len(dates)) if min_days is None else min_days
    eligible = (~np.isnan(panel)).sum(axis=0) >= min_days
    # At most one cluster per MIN_PER_CLUSTER instruments: a concept of one stock tells HIST nothing new.
    k = min(n_concepts, max(2, int(eligible.sum()) // MIN_PER_CLUSTER))
    if eligible.sum() < 2:
        raise ValueError(
            f"cannot derive concepts over {train_start}..{train_end}: {int(eligible.sum())} instrument(s) have "
            f"at least {min_days} train days of returns, 2 or more are needed"
        )
    corr = _residual_correlation(panel[:, eligible], min_days // 2)
    labels = _kmeans(corr, k, np.random.default_rng(seed), n_init)
    # Number clusters by size (largest first; ties by their first member) so the names do not depend on the
    # order k-means happened to find them in.
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == c)[0] for c in range(k)])
    rank = np.empty(k, dtype=np.int64)
    rank[np.lexsort((first, -sizes))] = np.arange(k)
    matrix = np.zeros((len(instruments), k), dtype=np.float32)
    matrix[np.flatnonzero(eligible), rank[labels]] = 1.0
    n_short = int((~eligible).sum())
    source = (
        f"derived: {k} clusters of daily-return correlation over the train segment {train_start}..{train_end} "
        f"(k-means on the correlation rows of {int(eligible.sum())} instruments, seed {seed}; {n_short} "
        f"instrument(s) with fewer than {min_days} train days in no concept)"
    )
    return Concepts(instruments, matrix, tuple(f"cluster_{i + 1:02d}" for i in range(k)), source)


def _residual_correlation(panel: np.ndarray, min_overlap: int) -> np.ndarray:
    """Correlation of the columns of ``panel`` (NaN: no return that day) after removing each day's mean."""
    valid = ~np.isnan(panel)
    count = valid.sum(axis=1, keepdims=True)
    day_mean = np.nansum(panel, axis=1, keepdims=True) / np.maximum(count, 1)
    resid = np.where(valid, panel - day_mean, np.nan)
    z = (resid - np.nanmean(resid, axis=0)) / np.maximum(np.nanstd(resid, axis=0), 1e-12)
    z = np.where(valid, np.clip(z, -CLIP_SD, CLIP_SD), 0.0)
    overlap = valid.T.astype(np.float64) @ valid.astype(np.float64)
    corr = (z.T @ z) / np.maximum(overlap, 1.0)
    corr = np.where(overlap >= min_overlap, np.clip(corr, -1.0, 1.0), 0.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, n_init: int, max_iter: int = 100) -> np.ndarray:
    """Cluster label of each row of ``points``: the best of ``n_init`` k-means++ runs (lowest inertia)."""
    sq = (points**2).sum(axis=1)
    best_labels, best_inertia = np.zeros(len(points), dtype=np.int64), np.inf
    for _ in range(n_init):
        centers = _kmeans_pp(points, sq, k, rng)
        labels = np.full(len(points), -1)
        for _ in range(max_iter):
            dist = sq[:, None] - 2.0 * points @ centers.T + (centers**2).sum(axis=1)[None, :]
            new = dist.argmin(axis=1)
            counts = np.bincount(new, minlength=k)
            own = dist[np.arange(len(points)), new]
            for empty in np.flatnonzero(counts == 0):
                # An empty cluster takes the point farthest from its center among clusters of two or more.
                far = int(np.where(counts[new] > 1, own, -np.inf).argmax())
                counts[new[far]] -= 1
                counts[empty] += 1
                new[far], own[far] = empty, -np.inf
            if np.array_equal(new, labels):
                break
            labels = new
            centers = np.stack([points[labels == c].mean(axis=0) for c in range(k)])
        inertia = float(((points - centers[labels]) ** 2).sum())
        if inertia < best_inertia:
            best_labels, best_inertia = labels, inertia
    return best_labels


def _kmeans_pp(points: np.ndarray, sq: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ starting centers: each next one drawn with probability proportional to the squared distance
    to the nearest center so far."""
    chosen = [int(rng.integers(len(points)))]
    nearest = np.maximum(sq - 2.0 * points @ points[chosen[0]] + sq[chosen[0]], 0.0)
    for _ in range(1, k):
        total = nearest.sum()
        pick = int(rng.choice(len(points), p=nearest / total)) if total > 0 else int(rng.integers(len(points)))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.maximum(sq - 2.0 * points @ points[pick] + sq[pick], 0.0))
    return points[chosen].copy()
