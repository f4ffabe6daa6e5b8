"""Qlib's Alpha360 feature set (``Alpha360DL.get_feature_config``).

Six blocks of 60 columns, in this order: CLOSE59..CLOSE0, OPEN59..OPEN0, HIGH.., LOW.., VWAP.., VOLUME59..VOLUME0.
A price block X is ``Ref($x, i)/$close`` (``$x/$close`` for i=0, so CLOSE0 is 1); the volume block is
``Ref($volume, i)/($volume+1e-12)``. Everything is float32 arithmetic on the float32 fields, exactly as in Qlib;
a day on which today's volume is 0 gives values around 1e18 (Qlib does the same). Qlib's NaN comes out as null.

The VWAP block is the only one that reads ``vwap``; when ``bars`` has no ``vwap`` column, or it is entirely null
(as in the real CSI300 data), its 60 columns are all-null.
"""

from __future__ import annotations

import numpy as np

from features.calendar_grid import Grid, Sink

N_LAGS = 60
BLOCKS = [
    ("CLOSE", "close"),
    ("OPEN", "open"),
    ("HIGH", "high"),
    ("LOW", "low"),
    ("VWAP", "vwap"),
    ("VOLUME", "volume"),
]
ALPHA360_COLUMNS: list[str] = [f"{prefix}{i}" for prefix, _ in BLOCKS for i in range(N_LAGS - 1, -1, -1)]
FIELDS = ("open", "high", "low", "close", "volume", "vwap")
REQUIRED = ("open", "high", "low", "close", "volume")
LOOKBACK = N_LAGS - 1  # Ref($x, 59)

_E32 = np.float32(1e-12)


def write_alpha360(grid: Grid, sink: Sink) -> None:
    """Every Alpha360 column of one chunk, gathered and divided in place in the output arrays."""
    pos = grid.out_pos
    close = grid.field("close")[pos]
    first = pos - (N_LAGS - 1)  # cells >= PAD > 59, so every lag is a forward offset from here
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        volume_den = grid.field("volume")[pos] + _E32
        for prefix, field in BLOCKS:
            values = grid.field(field)
            den = volume_den if field == "volume" else close
            for lag in range(N_LAGS - 1, -1, -1):
                name = f"{prefix}{lag}"
                if values is None:
                    sink.put(name, None)
                    continue
                # values[pos - lag]; the padding before each instrument makes it NaN before its first day
                col = sink.dest(name)
                np.take(values[N_LAGS - 1 - lag :], first, out=col, mode="clip")
                np.divide(col, den, out=col)
