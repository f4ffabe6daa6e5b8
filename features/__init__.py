"""Feature sets computed from daily bars with Qlib 0.9.x semantics: Qlib's Alpha158 / Alpha360 and default
label, and users' own sets, all declared in ``features.catalog`` as Qlib expressions.

Missing input fields: ``vwap`` is optional. When ``bars`` has no ``vwap`` column, or it is entirely null (the
real CSI300 data has none), the features that read it are all-null: VWAP0 in Alpha158 and the VWAP59..VWAP0
block of Alpha360. ``open``, ``high``, ``low``, ``close`` and ``volume`` are required (``close`` only, for the
label). Qlib's NaN is represented as null in the Float32 output columns; +-inf values stay inf.
"""

from features.qlib_sets import LABEL_COLUMNS as _LABEL
from features.qlib_sets import alpha158_columns, alpha360_columns
from features.registry import (
    FEATURE_SETS,
    compute_features,
    horizon,
    lookback,
)

# Column names in Qlib's order, generated like Qlib's loaders (see features.qlib_sets).
ALPHA158_COLUMNS: list[str] = [c for c, _ in alpha158_columns()]
ALPHA360_COLUMNS: list[str] = [c for c, _ in alpha360_columns()]
LABEL_COLUMNS: list[str] = [c for c, _ in _LABEL]

__all__ = [
    "ALPHA158_COLUMNS",
    "ALPHA360_COLUMNS",
    "FEATURE_SETS",
    "LABEL_COLUMNS",
    "compute_features",
    "horizon",
    "lookback",
]
