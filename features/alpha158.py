"""Qlib's Alpha158 feature set (``Alpha158DL.get_feature_config`` with the handler's default config).

158 columns in Qlib's order: 9 k-bar features, OPEN0/HIGH0/LOW0/VWAP0, then 29 rolling groups, each over the
windows 5, 10, 20, 30, 60 (``ROC5 .. ROC60, MA5 .. MA60, ...``).

Numbers follow Qlib's evaluation, including its dtypes: raw fields are float32 and element-wise arithmetic on
them stays float32 (so ``+1e-12`` only matters when the value is 0), rolling aggregations are computed in float64,
and every feature is finally cast to float32. Qlib's NaN comes out as null; +-inf stays inf.

Known difference from Qlib (about 0.1% of the cells of VSTD* and WVMA* on the real data): when a window's
volumes (VSTD) or |return| x volume (WVMA) are all 0, e.g. during a suspension carried forward with zero
volume, the std is exactly 0 here, so the feature is 0. Qlib gets pandas' online-variance residue there (which
depends on how far back the series was loaded) and divides it by ~1e-12, giving values such as 1e8..1e13.

VWAP0 (``$vwap/$close``) is the only feature that reads ``vwap``; when ``bars`` has no ``vwap`` column, or it is
entirely null (as in the real CSI300 data), VWAP0 is an all-null column.
"""

from __future__ import annotations

import numpy as np

from features import ops
from features.calendar_grid import Grid, Sink

WINDOWS = ops.WINDOWS
KBAR_COLUMNS = ["KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2"]
PRICE_COLUMNS = ["OPEN0", "HIGH0", "LOW0", "VWAP0"]
ROLLING_GROUPS = [
    "ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK", "RSV", "IMAX", "IMIN",
    "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN", "SUMD", "VMA", "VSTD", "WVMA", "VSUMP",
    "VSUMN", "VSUMD",
]  # fmt: skip
ALPHA158_COLUMNS: list[str] = (
    KBAR_COLUMNS + PRICE_COLUMNS + [f"{group}{w}" for group in ROLLING_GROUPS for w in WINDOWS]
)
FIELDS = ("open", "high", "low", "close", "volume", "vwap")
REQUIRED = ("open", "high", "low", "close", "volume")
# Longest reach into the past: Corr(C/Ref(C,1), ..., 60), Sum(C-Ref(C,1), 60) and Ref(C, 60) need 60 days.
LOOKBACK = 60

_E32 = np.float32(1e-12)  # Qlib's "+1e-12" on a float32 series stays float32


def write_alpha158(grid: Grid, sink: Sink) -> None:
    """Every Alpha158 column of one chunk, into the sink."""
    cols = _compute(grid)
    for name in ALPHA158_COLUMNS:
        sink.put(name, cols.pop(name))


def _compute(g: Grid) -> dict[str, np.ndarray | None]:
    open_, high, low, close, vol = (g.field(f) for f in REQUIRED)
    vwap = g.field("vwap")
    pos = g.out_pos
    o, h, l, c, v = open_[pos], high[pos], low[pos], close[pos], vol[pos]
    cols: dict[str, np.ndarray | None] = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # --- k-bar, all float32 like Qlib
        rng = h - l + _E32
        top = h - np.maximum(o, c)
        bottom = np.minimum(o, c) - l
        shadow = 2 * c - h - l
        cols.update(
            KMID=(c - o) / o, KLEN=(h - l) / o, KMID2=(c - o) / rng, KUP=top / o, KUP2=top / rng,
            KLOW=bottom / o, KLOW2=bottom / rng, KSFT=shadow / o, KSFT2=shadow / rng,
        )  # fmt: skip
        cols.update(OPEN0=o / c, HIGH0=h / c, LOW0=l / c, VWAP0=None if vwap is None else vwap[pos] / c)

        c64 = c.astype(np.float64)
        # --- price level over the window
        regression = ops.rolling_regression(close, g)
        std_c = {w: r[4] for w, r in regression.items()}
        maxima = ops.rolling_max(high)
        minima = ops.rolling_min(low)
        quantiles = ops.rolling_quantiles(close, pos, (0.8, 0.2))
        ranks = ops.rolling_rank(close)
        idxmax = ops.rolling_idxmax(high, g)
        idxmin = ops.rolling_idxmin(low, g)
        for w in WINDOWS:
            slope, rsq, resi, mean, std = regression[w]
            slope, rsq, resi = slope[pos], rsq[pos], resi[pos]
            hi, lo = maxima[w][pos], minima[w][pos]
            imax, imin = idxmax[w][pos], idxmin[w][pos]
            cols[f"ROC{w}"] = close[pos - w] / c  # cells before an instrument are NaN padding
            cols[f"MA{w}"] = mean[pos] / c64
            cols[f"STD{w}"] = std[pos] / c64
            cols[f"BETA{w}"] = slope / c64
            cols[f"RSQR{w}"] = np.where(ops.std_is_zero(std[pos]), np.nan, rsq)
            cols[f"RESI{w}"] = resi / c64
            cols[f"MAX{w}"] = hi / c64
            cols[f"MIN{w}"] = lo / c64
            cols[f"QTLU{w}"] = quantiles[w][0] / c64
            cols[f"QTLD{w}"] = quantiles[w][1] / c64
            cols[f"RANK{w}"] = ranks[w][pos]
            cols[f"RSV{w}"] = (c64 - lo) / (hi - lo + 1e-12)
            cols[f"IMAX{w}"] = imax / w
            cols[f"IMIN{w}"] = imin / w
            cols[f"IMXD{w}"] = (imax - imin) / w
        del regression, maxima, minima, quantiles, ranks, idxmax, idxmin

        # --- price/volume correlations
        log_v = np.log(vol + np.float32(1))
        _corr_into(cols, "CORR", close, log_v, g, std_c)
        prev_c = ops.shift(close, 1)
        prev_v = ops.shift(vol, 1)
        ret = close / prev_c
        _corr_into(cols, "CORD", ret, np.log(vol / prev_v + np.float32(1)), g, None)

        # --- up/down counts and sums
        up = (close > prev_c).astype(np.float64)  # comparisons with NaN are False, like Qlib
        down = (close < prev_c).astype(np.float64)
        counts = ops.window_sums(np.stack([up, down]), WINDOWS)
        age = g.age[pos]
        for w in WINDOWS:
            n = np.minimum(age + 1, w).astype(np.float64)  # days in the window since the first day
            n_up, n_down = (a[pos] for a in counts[w])
            cols[f"CNTP{w}"] = n_up / n
            cols[f"CNTN{w}"] = n_down / n
            cols[f"CNTD{w}"] = n_up / n - n_down / n
        _updown_into(cols, "SUM", close - prev_c, pos)

        # --- volume
        v_den = v + _E32  # float32, so only a zero volume changes
        vol_moments = ops.rolling_moments(vol, g)
        move = np.abs(ret - np.float32(1)) * vol
        move_moments = ops.rolling_moments(move, g)
        for w in WINDOWS:
            mean, std = vol_moments[w]
            cols[f"VMA{w}"] = mean[pos] / v_den
            cols[f"VSTD{w}"] = std[pos] / v_den
            m_mean, m_std = move_moments[w]
            cols[f"WVMA{w}"] = m_std[pos] / (m_mean[pos] + 1e-12)
        _updown_into(cols, "VSUM", vol - prev_v, pos)
    return cols


def _corr_into(
    cols: dict, group: str, left: np.ndarray, right: np.ndarray, g: Grid, left_std: dict[int, np.ndarray] | None
) -> None:
    """Corr(left, right, W) with Qlib's mask: NaN where either side's own rolling std is <= 2e-5."""
    corr, std_l, std_r = ops.rolling_corr(left, right, g, side_std=(left_std is None, True))
    std_l = left_std or std_l
    pos = g.out_pos
    for w in WINDOWS:
        flat = ops.std_is_zero(std_l[w][pos]) | ops.std_is_zero(std_r[w][pos])
        cols[f"{group}{w}"] = np.where(flat, np.nan, corr[w][pos])


def _updown_into(cols: dict, prefix: str, diff: np.ndarray, pos: np.ndarray) -> None:
    """{prefix}P/N/D: Sum(Greater(d,0))/(Sum(Abs(d))+1e-12), the same for Greater(-d,0), and their difference."""
    # Greater(d,0) + Greater(-d,0) == Abs(d) exactly, so the denominator is the sum of the two sums
    sums = ops.rolling_sums([np.maximum(diff, 0), np.maximum(-diff, 0)])
    for w in WINDOWS:
        gain, loss = (a[pos] for a in sums[w])
        den = (gain + loss) + 1e-12
        cols[f"{prefix}P{w}"] = gain / den
        cols[f"{prefix}N{w}"] = loss / den
        cols[f"{prefix}D{w}"] = (gain - loss) / den
