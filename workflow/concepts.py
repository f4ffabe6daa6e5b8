"""The concepts stage: HIST's stock-to-concept memberships for the universe, stored in tables `concepts`
(instrument, concept) and `concept_source` (one row: where they came from), and loaded back as a ``Concepts``.

Where they come from, in order: the source's own concepts (``concepts.csv`` beside a Qlib or CSV directory, the
synthetic market's sectors), restricted to the universe's instruments; else clusters derived from the warehouse's
bars over the train segment only (``processing.concepts.derive_concepts``). A source's file is taken as given: a
snapshot made after the train segment may carry look-ahead, as Qlib's own HIST snapshot may.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass, field

import polars as pl

from processing.concepts import Concepts, daily_returns, derive_concepts
from warehouse.sources.base import BarSource, SkippedFile
from warehouse.store import Warehouse
from workflow.names import CONCEPTS_ASSET
from workflow.panels import read_membership
from workflow.segments import Segments

N_DERIVED = 20  # clusters when derived (CSI300 2010-2016: 615 instruments in clusters of 6 to 65)


@dataclass
class ConceptsReport:
    concepts: Concepts
    origin: str  # "source" (its file or generator) or "derived"
    version: str
    universe: int  # instruments of the universe
    covered: int  # of them, in at least one concept
    outside_universe: int  # instruments of the source's concepts that are not in the universe (left out)
    fit: tuple[dt.date, dt.date] | None  # the train segment the derivation read; None for the source's own
    seconds: float
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def uncovered(self) -> int:
        return self.universe - self.covered


def concepts_version(concepts: Concepts) -> str:
    text = concepts.source + "\n" + concepts.members().write_csv()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def fit_and_store_concepts(warehouse: Warehouse, source: BarSource, segments: Segments) -> ConceptsReport:
    """The universe's concepts from ``source``, or derived over ``segments.train``, stored in one transaction.

    Bad input raises before anything is written (strict mode); in lenient mode the lines left out are reported.
    """
    t0 = time.perf_counter()
    members = read_membership(warehouse)["instrument"].unique().sort()
    if members.is_empty():
        raise ValueError("the warehouse has no universe members; materialize the universe asset first")
    rows = source.concepts()
    skipped = source.skipped_concepts()
    outside, fit = 0, None
    if rows is not None:
        origin = "source"
        inside = pl.col("instrument").is_in(members.to_list())
        outside = rows.filter(~inside)["instrument"].n_unique()
        rows = rows.filter(inside)
        if rows.is_empty():
            raise ValueError(
                f"{source.concepts_origin()}: none of its instruments is a member of the universe "
                f"({members.len()} instruments, e.g. {members.head(3).to_list()})"
            )
        concepts = Concepts.from_members(rows, source.concepts_origin())
    else:
        origin, fit = "derived", segments.train
        where = source.concepts_origin()
        why = f"every line of {where} left out as bad" if skipped else f"{where} absent"
        derived = derive_concepts(_train_returns(warehouse, *fit), *fit, n_concepts=N_DERIVED)
        line = f"{derived.source}; the source has none: {why}"
        concepts = Concepts(derived.instruments, derived.matrix, derived.names, line)
    version = concepts_version(concepts)
    meta = pl.DataFrame(
        {
            "source": [concepts.source],
            "origin": [origin],
            "concepts_version": [version],
            "fitted_at": [dt.datetime.now()],
            "fit_start": [fit[0] if fit else None],
            "fit_end": [fit[1] if fit else None],
            "n_concepts": [concepts.n_concepts],
            "n_instruments": [len(concepts.covered())],
        },
        schema_overrides={"fit_start": pl.Date, "fit_end": pl.Date, "n_concepts": pl.Int32, "n_instruments": pl.Int32},
    )
    warehouse.replace_tables({"concepts": concepts.members(), "concept_source": meta})
    covered = int(members.is_in(concepts.covered().tolist()).sum())
    return ConceptsReport(
        concepts, origin, version, members.len(), covered, outside, fit, time.perf_counter() - t0, skipped
    )


def _train_returns(warehouse: Warehouse, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Daily returns of the universe's instruments from the bars dated in [start, end] (nothing later is read)."""
    bars = warehouse.query(
        "select instrument, date, close from bars where date between ? and ? "
        "and instrument in (select instrument from instruments) order by instrument, date",
        [start, end],
    )
    if bars.is_empty():
        raise ValueError(
            f"the train segment {start}..{end} has no bars of the universe in the warehouse; materialize the bars "
            "asset for those dates (concepts are derived from them when the source has none)"
        )
    return daily_returns(bars)


def load_concepts(warehouse: Warehouse) -> Concepts:
    """The stored concepts; an error naming the asset to materialize when there are none yet."""
    meta = warehouse.query("select source from concept_source") if warehouse.table_exists("concept_source") else None
    if meta is None or meta.is_empty():
        raise ValueError(f"the warehouse has no concepts yet; materialize the {CONCEPTS_ASSET} asset first")
    rows = warehouse.query("select instrument, concept from concepts order by instrument, concept")
    return Concepts.from_members(rows, meta["source"][0])
