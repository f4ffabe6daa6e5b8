"""Stock-to-concept memberships, the extra input of HIST's predefined-concept module.

A ``Concepts`` is a 0/1 matrix over instruments x concepts plus where it came from: a file beside the source
data (``concepts.csv``: instrument, concept; several rows per instrument allowed), the synthetic market's
sectors, or concepts derived from the train segment's returns when the source has none. HIST reads, per trading
day, the rows of that day's stocks; an instrument the matrix does not know belongs to no concept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
