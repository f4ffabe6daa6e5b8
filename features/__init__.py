"""Qlib's Alpha158 / Alpha360 features and default label, computed from daily bars with Qlib 0.9.x semantics.

Missing input fields: ``vwap`` is optional. When ``bars`` has no ``vwap`` column, or it is entirely null (the
real CSI300 data has none), the features that read it are all-null: VWAP0 in Alpha158 and the VWAP59..VWAP0
block of Alpha360. ``open``, ``high``, ``low``, ``close`` and ``volume`` are required (``close`` only, for the
label). Qlib's NaN is represented as null in the Float32 output columns; +-inf values stay inf.
"""

from features.alpha158 import ALPHA158_COLUMNS
from features.alpha360 import ALPHA360_COLUMNS
from features.labels import LABEL_COLUMNS
from features.registry import (
    FEATURE_SETS,
    compute_alpha158,
    compute_alpha360,
    compute_features,
    compute_labels,
    label_horizon,
    lookback,
)

__all__ = [
    "ALPHA158_COLUMNS",
    "ALPHA360_COLUMNS",
    "FEATURE_SETS",
    "LABEL_COLUMNS",
    "compute_alpha158",
    "compute_alpha360",
    "compute_features",
    "compute_labels",
    "label_horizon",
    "lookback",
]
