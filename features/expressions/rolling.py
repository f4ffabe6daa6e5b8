"""Qlib 0.9.7's hard rolling operators as Polars expressions.

Each function takes Float64 expressions and a window ``n`` and returns an expression meant to be evaluated over
ONE instrument's calendar span ordered by date: the caller wraps it in ``.over("instrument")``, so only
expressions that are valid in a window context are used (``rolling_*``, ``shift``, ``cum_*``, ``rank``,
``int_range(pl.len())``, ``when/then``, whole-group aggregates such as ``mean``, and for Mad the rolling
group-by ``Expr.rolling``). The expanding (n == 0) Mad and EMA come from ``numpy_fallback`` (the engine's one
numpy module; ``map_batches`` called once per instrument inside ``over``): quadratic by definition, Polars'
per-window evaluation took 0.6 s (Mad) and 1.7 s (EMA) per 4000-day instrument, 14x slower than Qlib's own
pandas apply; blocked numpy takes about 30 ms.

Polars evaluates every occurrence of a sub-expression inside ``over`` again (no common-subexpression sharing
there; ``fill_nan`` too evaluates its input twice), so each costly part is referenced once: guards are
divisions by a null (``replace(0.0, None)``) rather than ``when(cond).then(value)`` on the same parts.

Input contract: every value pandas' rolling would skip (NaN and +-inf) is already null. Output: Float64, null
where Qlib gives NaN. Semantics are Qlib's, i.e. pandas ``rolling(n, min_periods=1)`` (``expanding`` for
``n == 0`` where Qlib has it): windows start at the instrument's first day, null elements are skipped and a
window without a value gives null.

Precision: pandas and Qlib's Cython kernels keep running sums, whose residue shows on near-constant windows
after large values left them; the former numpy engine computed the exact values instead and
matches Qlib on 99.996 % of cells, and so do these kernels. Sums that feed a cancellation-prone difference are
taken either from Polars' ``rolling_var`` (accurate far beyond raw sums of squares, measured 2e-7 relative on
1e9 +- 1 windows where raw sums lose every digit) or from weighted window sums (Polars computes a weighted
window directly, so nothing drifts over the years); covariances come from variances by polarization.
"""

from __future__ import annotations

import polars as pl

from features.expressions import numpy_fallback

# Qlib masks Rsquare and Corr where np.isclose(rolling std, 0, atol=2e-5), i.e. std <= 2e-5.
STD_ATOL = 2e-5
# Window length standing for "expanding" in Polars' rolling_* (longer than any instrument's span).
_EXPANDING = 1 << 31
_F64 = pl.Float64


def _check_window(n: int, name: str, minimum: int = 1) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{name}: window must be a non-negative integer, got {n!r}")
    if n != 0 and n < minimum:
        raise ValueError(f"{name}: window must be 0 (expanding) or at least {minimum}, got {n}")


def _span(n: int) -> int:
    return _EXPANDING if n == 0 else n


def _sum(e: pl.Expr, n: int) -> pl.Expr:
    """Window sum of a null-free expression (plain running sum; use only where no cancellation follows)."""
    return e.cum_sum() if n == 0 else e.rolling_sum(n, min_samples=1)


def _count(x: pl.Expr, n: int) -> pl.Expr:
    """Number of non-null values in each window (Float64)."""
    return _sum(x.is_not_null().cast(_F64), n)


def _index() -> pl.Expr:
    """0-based row number within the instrument."""
    return pl.int_range(pl.len(), dtype=pl.Int64)


def _nan_to_null(e: pl.Expr) -> pl.Expr:
    """Polars' rolling kernels return NaN in some degenerate windows where Qlib's value is NaN (null here).
    (``fill_nan`` would evaluate ``e`` twice: Polars does not share sub-expressions inside ``over``.)"""
    return e.replace(float("nan"), None)


# ---------------------------------------------------------------- order statistics and moments


def rolling_skew(x: pl.Expr, n: int) -> pl.Expr:
    """``Skew(x, n)``: pandas' bias-corrected sample skewness; null with fewer than 3 values or a constant
    window. Qlib accepts n == 0 (expanding) or n >= 3."""
    _check_window(n, "Skew", 3)
    z = x - x.mean()  # skewness is shift-invariant; centring keeps the moments' digits
    return _nan_to_null(z.rolling_skew(_span(n), bias=False, min_samples=1))


def rolling_kurt(x: pl.Expr, n: int) -> pl.Expr:
    """``Kurt(x, n)``: pandas' bias-corrected excess kurtosis; null with fewer than 4 values or a constant
    window. Qlib accepts n == 0 (expanding) or n >= 4."""
    _check_window(n, "Kurt", 4)
    z = x - x.mean()
    return _nan_to_null(z.rolling_kurtosis(_span(n), fisher=True, bias=False, min_samples=1))


def rolling_med(x: pl.Expr, n: int) -> pl.Expr:
    """``Med(x, n)``: median of the window's values."""
    _check_window(n, "Med")
    return x.rolling_median(_span(n), min_samples=1)


def rolling_quantile(x: pl.Expr, n: int, q: float) -> pl.Expr:
    """``Quantile(x, n, q)``: linear interpolation at position q * (count - 1) of the sorted values."""
    _check_window(n, "Quantile")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"Quantile: q must be within [0, 1], got {q!r}")
    return x.rolling_quantile(q, "linear", _span(n), min_samples=1)


def rolling_rank(x: pl.Expr, n: int) -> pl.Expr:
    """``Rank(x, n)``: pandas ``rolling.rank(pct=True)``: the average-method rank of the window's last value
    among the window's values, divided by their count; null when the last value is null."""
    _check_window(n, "Rank")
    rank = x.rolling_rank(_span(n), "average", min_samples=1).cast(_F64)
    return pl.when(x.is_not_null()).then(rank / _count(x, n))


def _window_eval(agg: pl.Expr, n: int) -> pl.Expr:
    """``agg`` evaluated on each row's window (the last n rows, all rows so far when n == 0) through Polars'
    rolling group-by on the row number. General but about 10 us per row: for what window sums cannot do."""
    period = f"{_EXPANDING if n == 0 else n}i"
    return agg.rolling(index_column=_index(), period=period)


# Up to this window Mad sums shifted copies (cost grows with n); longer windows use the rolling group-by
# (measured crossover on 1.2 M rows: n = 20 takes 1.6 s with shifts, 3.2 s with the group-by).
_MAD_SHIFTS = 30


def rolling_mad(x: pl.Expr, n: int) -> pl.Expr:
    """``Mad(x, n)``: Qlib's mean absolute deviation around the window's mean, mean(|v - mean(v)|).

    Not a function of window sums (the deviations are from each window's own mean), so short windows are
    summed explicitly from n shifted copies and longer ones aggregated per window by the rolling group-by;
    expanding windows are quadratic in the span, as Qlib's own expanding apply."""
    _check_window(n, "Mad")
    if n == 0:
        return numpy_fallback.expanding_mad(x)
    if n > _MAD_SHIFTS:
        return _window_eval((x - x.mean()).abs().mean(), n)
    mean = x.rolling_mean(n, min_samples=1)  # referenced n times below, so one cheap rolling op
    total = pl.sum_horizontal([(x.shift(k) - mean).abs() for k in range(n)])  # skips nulls
    return total / _count(x, n).replace(0.0, None)


# ---------------------------------------------------------------- IdxMax, IdxMin


def _idx_extreme(x: pl.Expr, n: int, name: str, descending: bool) -> pl.Expr:
    """1-based position, from the window's oldest element, of the first maximum (minimum when descending);
    the first null's position when the window holds a null but some value (np.argmax on a raw window with
    NaN); null for a window without values.

    One rolling max of an exact integer key per row does it: key = tier * B + (B - 1 - row), the tier being
    the dense rank of the value, or above every rank for a null; so the largest key in a window is its oldest
    null if it has one, else its largest value, the oldest among equal ones."""
    _check_window(n, name)
    row = _index()
    big = 1 << 31  # more rows (and distinct values) than any instrument has; tier * big stays < 2**62
    tier = _nan_to_null(x).rank("dense", descending=descending).cast(pl.Int64).fill_null(big - 1)
    key = tier * big + (big - 1 - row)
    if n == 0:
        best, start = key.cum_max(), 0
    else:
        best, start = key.rolling_max(n, min_samples=1), pl.max_horizontal(row - (n - 1), 0)
    pos = (big - 1 - best % big) - start + 1
    return pl.when(_count(x, n) > 0).then(pos.cast(_F64))


def rolling_idxmax(x: pl.Expr, n: int) -> pl.Expr:
    """``IdxMax(x, n)``; x must have NaN as null (as every rolling input here)."""
    return _idx_extreme(x, n, "IdxMax", descending=False)


def rolling_idxmin(x: pl.Expr, n: int) -> pl.Expr:
    """``IdxMin(x, n)``; as ``rolling_idxmax`` for the first minimum."""
    return _idx_extreme(x, n, "IdxMin", descending=True)


# ---------------------------------------------------------------- Slope, Rsquare, Resi


def _weighted_sum(e: pl.Expr, weights: list[float]) -> pl.Expr:
    """Window sum of a null-free expression with weights aligned to the window's end (also for the shorter
    windows of an instrument's first days, where the oldest weights go unused), computed per window."""
    return e.rolling_sum(len(weights), weights=weights, min_samples=1)


def regression_sums(x: pl.Expr, n: int) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(count, S row, S row**2, S y) over each window's non-null values (count and row sums exact Int64, row the
    0-based row number), the sums ``regression_moments`` builds on."""
    ok = x.is_not_null()
    row = _index()
    count_i = _sum(ok.cast(pl.Int64), n)
    s_g = _sum(pl.when(ok).then(row).otherwise(0), n)
    s_gg = _sum(pl.when(ok).then(row * row).otherwise(0), n)
    return count_i, s_g, s_gg, _sum(x.fill_null(0.0), n)


def regression_moments(
    x: pl.Expr,
    n: int,
    sums: tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr],
    extremes: tuple[pl.Expr, pl.Expr] | None = None,
) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(count, sxx, sxy, syy, newest position minus mean position, today's y minus mean y) of the least
    squares of the window's values y on their positions, placed as Qlib's Cython kernels place them: the
    newest element at n, the others at n-1, n-2, ... whether or not they are null (expanding: the first day
    at 1). sxx, sxy, syy are sums of products of deviations from the means; ``sums`` is ``regression_sums``.

    Position sums are exact integer sums of row numbers (sxx = (N*Sgg - Sg^2) / N has no rounding before the
    division); the one value sum weighted by position is a Polars weighted window sum on centred weights, so
    a full window sums (p - mean p) * y directly, without the cancellation of raw sums of p*y. ``extremes``:
    the window's largest and least values when the caller has them (else Polars' rolling max / min)."""
    count_i, s_g, s_gg, s_y = sums
    row = _index()
    count = count_i.cast(_F64).replace(0.0, None)  # an empty window gives null, not NaN
    x0 = x.fill_null(0.0)
    # newest position minus the mean position, in row numbers: t - Sg / N
    newest = (row * count_i - s_g).cast(_F64) / count
    sxx = (count_i * s_gg - s_g * s_g).cast(_F64) / count
    if n == 0:
        # positions are row + 1; sum((row - mean row) * y) = S(row * y) - mean row * S(y)
        sxy = (x0 * row.cast(_F64)).cum_sum() - s_g.cast(_F64) / count * s_y
    else:
        # weights k - (n + 1) / 2 for the positions k = 1..n; their mean over the window's values is
        # (n - 1) / 2 - newest, so sum((p - mean p) * y) = weighted sum - that mean * S(y)
        centred = [k - (n + 1) / 2 for k in range(1, n + 1)]
        sxy = _weighted_sum(x0, centred) - ((n - 1) / 2 - newest) * s_y
    syy = x.rolling_var(_span(n), min_samples=1, ddof=0) * count
    # today's value minus the window's mean; exactly 0 for a constant window (as the former numpy engine), where the
    # rounding of a sum of large values (1e9: about 1e-6) would otherwise show
    top, bottom = extremes or (x.rolling_max(_span(n), min_samples=1), x.rolling_min(_span(n), min_samples=1))
    flat = top == bottom
    dev = pl.when(flat).then(0.0).otherwise(x - s_y / count)
    return count_i, sxx, sxy, syy, newest, dev


def _regression(x: pl.Expr, n: int) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    return regression_moments(x, n, regression_sums(x, n))


def _poisoned(result: pl.Expr, infinite: pl.Expr | None) -> pl.Expr:
    """Qlib's Cython kernels add an infinite value to their running sums, which stay NaN from then on (inf -
    inf): with ``infinite`` (True where the raw input was +-inf) the result is null from its first True on."""
    if infinite is None:
        return result
    seen = infinite.fill_null(False).cast(pl.Int8).cum_max() > 0
    return pl.when(seen).then(None).otherwise(result)


def slope_from(sxx: pl.Expr, sxy: pl.Expr) -> pl.Expr:
    """Slope from ``regression_moments``; sxx is 0 with one value, null without: the slope is null there."""
    return sxy / sxx.replace(0.0, None)


def rsquare_from(x: pl.Expr, n: int, sxx: pl.Expr, sxy: pl.Expr, syy: pl.Expr) -> pl.Expr:
    """Rsquare from ``regression_moments`` with Qlib's std mask (n > 0)."""
    rsq = sxy.pow(2) / (sxx * syy.replace(0.0, None))  # syy is 0 for one value and for a constant window
    if n:
        rsq = pl.when(_rolling_std(x, n) <= STD_ATOL).then(None).otherwise(rsq)
    return rsq


def resi_from(x: pl.Expr, count: pl.Expr, sxx: pl.Expr, sxy: pl.Expr, newest: pl.Expr, dev: pl.Expr) -> pl.Expr:
    """Resi from ``regression_moments``."""
    return (
        pl.when((count < 2) | x.is_null())
        .then(None)
        # the line through two points leaves exactly 0, which the two rounded terms would miss by some ulps
        .when(count == 2)
        .then(0.0)
        .otherwise(dev - sxy / sxx * newest)
    )


def rolling_slope(x: pl.Expr, n: int, *, infinite: pl.Expr | None = None) -> pl.Expr:
    """``Slope(x, n)``: least-squares slope of the window's values on their positions; null with fewer than
    two values (exactly 0/0, which Qlib's rounding residue turns into NaN or +-inf by chance). ``infinite``:
    see ``_poisoned`` (without it, +-inf inputs are simply left out)."""
    _check_window(n, "Slope")
    _, sxx, sxy, _, _, _ = _regression(x, n)
    return _poisoned(slope_from(sxx, sxy), infinite)


def rolling_rsquare(x: pl.Expr, n: int, *, infinite: pl.Expr | None = None) -> pl.Expr:
    """``Rsquare(x, n)``: squared correlation of the window's values with their positions; null with fewer
    than two values or a constant window (0/0; Qlib shows 0, +-inf or NaN there by rounding chance), and
    (n > 0 only, as in Qlib) where the rolling std is <= 2e-5. ``infinite``: see ``_poisoned``."""
    _check_window(n, "Rsquare")
    _, sxx, sxy, syy, _, _ = _regression(x, n)
    return _poisoned(rsquare_from(x, n, sxx, sxy, syy), infinite)


def rolling_resi(x: pl.Expr, n: int, *, infinite: pl.Expr | None = None) -> pl.Expr:
    """``Resi(x, n)``: today's residual of the window's regression; null when today's value is null or the
    window has fewer than two values. ``infinite``: see ``_poisoned``."""
    _check_window(n, "Resi")
    count, sxx, sxy, _, newest, dev = _regression(x, n)
    return _poisoned(resi_from(x, count, sxx, sxy, newest, dev), infinite)


# ---------------------------------------------------------------- WMA, EMA


def rolling_wma(x: pl.Expr, n: int) -> pl.Expr:
    """``WMA(x, n)``, Qlib's weighted mean as written: weights 1..L (L the window's length, shorter during the
    instrument's first n-1 days) normalised to sum 1, then ``np.nanmean(w * x)``, i.e. the weighted sum
    divided by the number of non-null values, not by the weights of those values: a full window of n equal
    values v gives v / n, not v."""
    _check_window(n, "WMA")
    x0 = x.fill_null(0.0)
    row = _index()
    # positions from the instrument's first day: exact for expanding windows and for the first n-1 days
    from_start = (x0 * (row + 1).cast(_F64)).cum_sum()
    length = (row + 1).cast(_F64)
    if n == 0:
        weighted = from_start
    else:
        full = _weighted_sum(x0, [float(k) for k in range(1, n + 1)])
        weighted = pl.when(row >= n - 1).then(full).otherwise(from_start)
        length = pl.min_horizontal(length, pl.lit(float(n)))
    return weighted / (length * (length + 1) / 2) / _count(x, n).replace(0.0, None)


def rolling_ema(x: pl.Expr, n: int | float) -> pl.Expr:
    """``EMA(x, n)``: pandas ``ewm(span=n, min_periods=1).mean()`` (adjust=True, nulls keep their place in the
    decay); a float n in (0, 1) is alpha instead of a span. A null day repeats the previous mean (pandas).

    n == 0 is Qlib's expanding apply: each day weights the L days so far by a**(L-1-i) with a = 1 - 2/(L+1),
    normalised over all L days (null days included), and sums the weighted non-null values. a changes with
    L, so there is no recursion and the cost is quadratic in the span: ``numpy_fallback.expanding_ema``."""
    if isinstance(n, bool) or not isinstance(n, int | float) or n < 0:
        raise ValueError(f"EMA: window must be a non-negative number, got {n!r}")
    if n == 0:
        return numpy_fallback.expanding_ema(x)
    if 0 < n < 1:
        ewm = x.ewm_mean(alpha=float(n), adjust=True, min_samples=1, ignore_nulls=False)
    elif n >= 1:
        ewm = x.ewm_mean(span=float(n), adjust=True, min_samples=1, ignore_nulls=False)
    else:
        raise ValueError(f"EMA: window must be 0, a span >= 1 or an alpha in (0, 1), got {n!r}")
    return ewm.forward_fill()


# ---------------------------------------------------------------- Corr, Cov


def _rolling_std(x: pl.Expr, n: int) -> pl.Expr:
    """pandas' rolling std (ddof=1) of x over its own non-null values (the series Qlib's masks look at);
    Polars' rolling variance needs no centring for the mask's 2e-5 threshold."""
    return x.rolling_std(_span(n), min_samples=1)


def _pair_moments(x: pl.Expr, y: pl.Expr, n: int) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(var a, var b, cov a b, std x, std y) over the pairwise-complete rows (both sides non-null), with a and
    b the sides divided by their instrument's std x, std y over those rows (null where that std is 0): the
    polarization below needs both sides on one scale.

    cov = (var(a + b) - var(a - b)) / 4 uses Polars' rolling variance, accurate without centring (2e-7
    relative on 1e9 +- 1 windows); raw window sums of products lose every digit on large, near-constant
    windows (Polars' rolling_cov gave corr errors of 700 there). The variances are null with fewer than two
    pairs. Each part is meant to be referenced once by the callers (no sharing inside ``over``)."""
    a, b, sx, sy = pair_scaled(x, y)
    return (*pair_moments(a, b, a + b, a - b, n), sx, sy)


def pair_scaled(x: pl.Expr, y: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(a, b, std x, std y) of ``_pair_moments``: window-independent, so shared by a family of windows."""
    both = x.is_not_null() & y.is_not_null()
    px, py = pl.when(both).then(x), pl.when(both).then(y)
    sx, sy = _power_of_two(px.std()), _power_of_two(py.std())
    return px / sx, py / sy, sx, sy


def _power_of_two(scale: pl.Expr) -> pl.Expr:
    """The power of two nearest ``scale`` (null for 0): dividing by it is exact, so a window's result does not
    move in the last bit when the rows the scale is estimated from (the loaded span, the chunk) change."""
    return (2.0 ** scale.replace(0.0, None).log(2).round()).cast(pl.Float64)


def pair_moments(
    a: pl.Expr, b: pl.Expr, a_plus_b: pl.Expr, a_minus_b: pl.Expr, n: int
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(var a, var b, cov a b) over windows of n from ``pair_scaled``'s sides and their sum and difference."""
    w = _span(n)
    var_sum = a_plus_b.rolling_var(w, min_samples=1)
    var_diff = a_minus_b.rolling_var(w, min_samples=1)
    return a.rolling_var(w, min_samples=1), b.rolling_var(w, min_samples=1), (var_sum - var_diff) / 4.0


def rolling_cov(x: pl.Expr, y: pl.Expr, n: int) -> pl.Expr:
    """``Cov(x, y, n)``: pandas' rolling covariance (ddof=1) over the rows where both sides have a value;
    null with fewer than two such rows. n == 0 is expanding."""
    _check_window(n, "Cov")
    va, vb, cov, sx, sy = _pair_moments(x, y, n)
    paired = _sum((x.is_not_null() & y.is_not_null()).cast(pl.Int32), n) >= 2
    # a side constant over the pairs (or over all the instrument's pairs: null std) has a covariance of
    # exactly 0, where the polarization would leave a residue of the other side's variance times epsilon
    flat = ((va * vb) == 0).fill_null(True)
    return pl.when(~paired).then(None).when(flat).then(0.0).otherwise(cov * sx * sy)


def rolling_corr(x: pl.Expr, y: pl.Expr, n: int) -> pl.Expr:
    """``Corr(x, y, n)``: pandas' rolling Pearson correlation over the rows where both sides have a value,
    null where either side's own rolling std (over its own values) is <= 2e-5 (Qlib's mask) or a side is
    constant over the pairs. Qlib has no expanding Corr (its mask calls rolling(0), which pandas refuses)."""
    _check_window(n, "Corr")
    if n == 0:
        raise ValueError("Corr: window 0 (expanding) is not supported by Qlib")
    va, vb, cov, _, _ = _pair_moments(x, y, n)
    return corr_from(x, y, n, va, vb, cov)


def corr_from(x: pl.Expr, y: pl.Expr, n: int, va: pl.Expr, vb: pl.Expr, cov: pl.Expr) -> pl.Expr:
    """Corr from ``pair_moments`` with Qlib's std masks on either side's own values."""
    masked = (_rolling_std(x, n) <= STD_ATOL) | (_rolling_std(y, n) <= STD_ATOL)
    # a zero product (constant side) becomes null; a masked row divides by null
    denominator = (va * vb).sqrt().replace(0.0, None) * pl.when(masked).then(None).otherwise(1.0)
    return cov / denominator
