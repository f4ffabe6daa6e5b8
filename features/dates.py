"""One date coercion for the domain code: the values users pass as dates (``datetime.date``, ``datetime``,
ISO strings, ``numpy.datetime64``) as a ``datetime64[D]`` day."""

from __future__ import annotations

import datetime as dt

import numpy as np

DateLike = dt.date | dt.datetime | str | np.datetime64


def to_day(value: DateLike | None, name: str = "date") -> np.datetime64 | None:
    """``value`` as ``datetime64[D]`` (None passes through); an error names the parameter ``name``."""
    if value is None:
        return None
    try:
        if isinstance(value, dt.datetime):
            value = value.date()
        elif isinstance(value, str):
            value = dt.date.fromisoformat(value.strip()[:10])
        return np.datetime64(value, "D")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}={value!r} is not a date: {exc}") from None
