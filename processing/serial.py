"""Exact, strictly-JSON encoding of fitted float32 statistics.

A float32 widened to a Python float prints (repr) as a decimal that converts back to the same float32, so a
round trip through JSON is bit-exact. NaN and ±inf are not valid JSON numbers and travel as strings.
"""

from __future__ import annotations

import math

import numpy as np

_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode_floats(values: np.ndarray) -> list[float | str]:
    out: list[float | str] = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        if math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(v)
    return out


def decode_floats(values: list[float | str], name: str = "values") -> np.ndarray:
    try:
        return np.array([_SPECIAL[v] if isinstance(v, str) else v for v in values], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"state field {name!r} is not a list of numbers: {exc}") from None
