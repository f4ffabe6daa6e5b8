"""The Polars rolling kernels against Qlib's definitions (pandas references written from qlib/data/ops.py and
its Cython kernels) on generated series. (The comparison with the former numpy kernels, ``features.ops``, went
with them; the built-in sets' parity with Qlib's own output is tests/features/test_parity_fixture.py.)"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import pandas as pd
import polars as pl
import pytest

from features.expressions import rolling as R

WINDOWS = (1, 2, 5, 20, 60, 0)
# float64 rounding of different but exact summation orders; pandas' own running sums stay below this on the
# generated data (moderate values); test_rolling_precision.py covers large values
RTOL, ATOL = 1e-9, 1e-10


# ---------------------------------------------------------------- data and harness


def _series(rng: np.random.Generator, length: int, level: float, scale: float) -> np.ndarray:
    x = level + np.cumsum(rng.normal(size=length)) * scale
    x[rng.random(length) < 0.08] = np.nan
    if length > 40:
        a = int(rng.integers(0, length - 30))
        x[a : a + int(rng.integers(3, 25))] = np.nan  # a suspension
        b = int(rng.integers(0, length - 30))
        x[b : b + int(rng.integers(3, 25))] = x[b]  # a constant run (forward-filled price)
        x[rng.integers(0, length, 2)] = np.inf
        x[rng.integers(0, length, 1)] = -np.inf
        x[: int(rng.integers(0, 5))] = np.nan  # leading missing
        x[length - int(rng.integers(0, 5)) :] = np.nan  # trailing missing
    return x


def make_frame(seed: int = 0) -> pd.DataFrame:
    """Several instruments of different lengths (1 day up to 400), as one long frame in (instrument, day)
    order; x and y raw (NaN and +-inf as Qlib would see them)."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, length in enumerate((1, 3, 70, 400, 260, 150)):
        x = _series(rng, length, 20.0 + 10 * k, 0.5)
        y = _series(rng, length, 1e6, 3e4) if k % 2 else 0.3 * x + rng.normal(size=length)
        if length == 150:
            x[:] = np.nan  # an instrument without values
        parts.append(pd.DataFrame({"instrument": f"I{k}", "x": x, "y": y}))
    return pd.concat(parts, ignore_index=True)


def run_kernel(
    frame: pd.DataFrame, kernel: Callable[..., pl.Expr], *args: object, pair: bool = False, **kwargs: object
) -> np.ndarray:
    """kernel(x[, y], *args).over("instrument") with NaN and +-inf as null (the kernels' input contract);
    the raw x stays available as column "raw"."""
    df = pl.from_pandas(frame).with_columns(
        *(pl.when(pl.col(c).is_finite()).then(pl.col(c)).cast(pl.Float64) for c in ("x", "y")),
        raw=pl.col("x"),
    )
    inputs = (pl.col("x"), pl.col("y")) if pair else (pl.col("x"),)
    out = df.select(kernel(*inputs, *args, **kwargs).over("instrument").alias("r"))["r"]
    assert out.dtype == pl.Float64
    assert not out.is_nan().any(), "NaN must be null"
    return out.fill_null(np.nan).to_numpy()


def reference(frame: pd.DataFrame, fn: Callable[..., pd.Series], pair: bool = False) -> np.ndarray:
    """fn(series[, other]) per instrument on the raw values (pandas cleans +-inf itself)."""
    out = []
    for _, g in frame.groupby("instrument", sort=False):
        x, y = g["x"].reset_index(drop=True), g["y"].reset_index(drop=True)
        out.append(np.asarray(fn(x, y) if pair else fn(x), dtype=np.float64))
    return np.concatenate(out)


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> None:
    miss = np.flatnonzero(np.isnan(got) != np.isnan(want))
    assert miss.size == 0, f"null pattern differs at {miss[:10]}: got {got[miss[:5]]}, want {want[miss[:5]]}"
    ok = ~np.isnan(want)
    diff = np.abs(got[ok] - want[ok])
    bad = np.flatnonzero(diff > atol + rtol * np.abs(want[ok]))
    assert bad.size == 0, f"{bad.size} values differ, worst {diff.max():.3g}: {got[ok][bad[:5]]} vs {want[ok][bad[:5]]}"


def roll(s: pd.Series, n: int):
    return s.expanding(min_periods=1) if n == 0 else s.rolling(n, min_periods=1)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


# ---------------------------------------------------------------- pandas references of Qlib's operators


def _mad(a: np.ndarray) -> float:
    v = a[~np.isnan(a)]
    return np.mean(np.abs(v - v.mean()))


def _wma(a: np.ndarray) -> float:
    w = np.arange(len(a)) + 1
    w = w / w.sum()
    return np.nanmean(w * a)


def _ema_expanding(a: np.ndarray) -> float:
    decay = 1 - 2 / (1 + len(a))
    w = decay ** np.arange(len(a))[::-1]
    w /= w.sum()
    return np.nansum(w * a)


def qlib_regression(values: np.ndarray, n: int, what: str) -> np.ndarray:
    """Qlib's Cython rolling (n > 0: a window pre-filled with n NaN, the newest value at position n) or
    expanding (n == 0: positions 1..size) slope / rsquare / resi with their running sums, in Python."""
    with np.errstate(invalid="ignore", divide="ignore"):  # +-inf inputs make the sums NaN, as in Qlib
        return _qlib_regression(values.astype(np.float64), n, what)


def _qlib_regression(values: np.ndarray, n: int, what: str) -> np.ndarray:
    out = np.empty(values.size)
    bar: deque[float] = deque([np.nan] * n)
    na = n  # NaN cells in the window (rolling, pre-filled) or so far (expanding)
    i_sum = x_sum = x2_sum = y_sum = y2_sum = xy_sum = 0.0
    for t, val in enumerate(values):
        pos = n if n else t + 1
        if n:
            # every value moves one position older; the oldest leaves
            bar.append(val)
            xy_sum -= y_sum
            x2_sum += i_sum - 2 * x_sum
            x_sum -= i_sum
            old = bar.popleft()
            if np.isnan(old):
                na -= 1
            else:
                i_sum -= 1
                y_sum -= old
                y2_sum -= old * old
        if np.isnan(val):
            na += 1
        else:
            i_sum += 1
            x_sum += pos
            x2_sum += pos * pos
            y_sum += val
            y2_sum += val * val
            xy_sum += pos * val
        count = (n if n else t + 1) - na
        if count < 2:
            # exactly 0/0; Qlib's running sums leave a rounding residue in the numerator, so Qlib shows NaN or
            # +-inf here by chance; the kernels give NaN
            out[t] = np.nan
            continue
        num = np.float64(count * xy_sum - x_sum * y_sum)
        den_x = np.float64(count * x2_sum - x_sum * x_sum)
        slope = num / den_x
        if what == "slope":
            out[t] = slope
        elif what == "resi":
            out[t] = val - (slope * pos + (y_sum / count - slope * x_sum / count))
        else:
            r = num / np.sqrt(den_x * np.float64(count * y2_sum - y_sum * y_sum))
            out[t] = r * r
    return out


def _clean(s: pd.Series) -> pd.Series:
    """+-inf as NaN: what pandas' rolling does before aggregating, and this engine's input contract."""
    return s.replace([np.inf, -np.inf], np.nan)


def _std_zero(s: pd.Series, n: int) -> np.ndarray:
    return np.isclose(s.rolling(n, min_periods=1).std(), 0, atol=2e-05)


def _exact_regression(a: np.ndarray, what: str) -> float:
    """Two-pass least squares of a raw window on its positions (NaN left out, the others keep theirs)."""
    p = np.arange(a.size, dtype=np.float64)
    ok = ~np.isnan(a)
    if ok.sum() < 2:
        return np.nan
    if what == "rsquare" and np.nanmax(a) == np.nanmin(a):
        return np.nan  # 0/0 (two passes would leave a rounding residue of about 1e-32)
    dp, da = p[ok] - p[ok].mean(), a[ok] - a[ok].mean()
    sxx, sxy, syy = (dp * dp).sum(), (dp * da).sum(), (da * da).sum()
    if what == "slope":
        return sxy / sxx
    if what == "rsquare":
        return sxy * sxy / (sxx * syy) if syy > 0 else np.nan
    return a[-1] - a[ok].mean() - sxy / sxx * (p[-1] - p[ok].mean())


def _regression(s: pd.Series, n: int, what: str) -> np.ndarray:
    out = roll(_clean(s), n).apply(lambda a: _exact_regression(a, what), raw=True).to_numpy().copy()
    if what == "rsquare" and n:
        out[_std_zero(s, n)] = np.nan
    return out


def _corr(x: pd.Series, y: pd.Series, n: int) -> np.ndarray:
    res = x.rolling(n, min_periods=1).corr(y).to_numpy().copy()
    res[_std_zero(x, n) | _std_zero(y, n)] = np.nan
    return res


def _ema(s: pd.Series, n: float) -> pd.Series:
    if n == 0:
        return s.expanding(min_periods=1).apply(_ema_expanding, raw=True)
    if 0 < n < 1:
        return s.ewm(alpha=n, min_periods=1).mean()
    return s.ewm(span=n, min_periods=1).mean()


# name -> (kernel, extra args, pandas reference(series, n), smallest window Qlib accepts)
SINGLE: dict[str, tuple[Callable[..., pl.Expr], tuple, Callable[[pd.Series, int], object], int]] = {
    "skew": (R.rolling_skew, (), lambda s, n: roll(s, n).skew(), 3),
    "kurt": (R.rolling_kurt, (), lambda s, n: roll(s, n).kurt(), 4),
    "med": (R.rolling_med, (), lambda s, n: roll(s, n).median(), 1),
    "q20": (R.rolling_quantile, (0.2,), lambda s, n: roll(s, n).quantile(0.2), 1),
    "q80": (R.rolling_quantile, (0.8,), lambda s, n: roll(s, n).quantile(0.8), 1),
    "rank": (R.rolling_rank, (), lambda s, n: roll(s, n).rank(pct=True), 1),
    "mad": (R.rolling_mad, (), lambda s, n: roll(s, n).apply(_mad, raw=True), 1),
    "idxmax": (R.rolling_idxmax, (), lambda s, n: roll(s, n).apply(lambda a: a.argmax() + 1, raw=True), 1),
    "idxmin": (R.rolling_idxmin, (), lambda s, n: roll(s, n).apply(lambda a: a.argmin() + 1, raw=True), 1),
    "slope": (R.rolling_slope, (), lambda s, n: _regression(s, n, "slope"), 1),
    "rsquare": (R.rolling_rsquare, (), lambda s, n: _regression(s, n, "rsquare"), 1),
    "resi": (R.rolling_resi, (), lambda s, n: _regression(s, n, "resi"), 1),
    "wma": (R.rolling_wma, (), lambda s, n: roll(s, n).apply(_wma, raw=True), 1),
    "ema": (R.rolling_ema, (), _ema, 1),
}
PAIR = {
    "corr": (R.rolling_corr, lambda x, y, n: _corr(x, y, n)),
    "cov": (R.rolling_cov, lambda x, y, n: roll(x, n).cov(y)),
}


@pytest.mark.parametrize("n", WINDOWS)
@pytest.mark.parametrize("name", list(SINGLE))
def test_single_series_kernels_match_qlib_definitions(frame: pd.DataFrame, name: str, n: int) -> None:
    kernel, args, ref, minimum = SINGLE[name]
    if n and n < minimum:
        with pytest.raises(ValueError, match=rf"window must be 0 \(expanding\) or at least {minimum}, got {n}"):
            kernel(pl.col("x"), n, *args)
        return
    want = reference(frame, lambda s: ref(s, n))
    assert_close(run_kernel(frame, kernel, n, *args), want)


@pytest.mark.parametrize("n", WINDOWS)
@pytest.mark.parametrize("name", list(PAIR))
def test_pair_kernels_match_qlib_definitions(frame: pd.DataFrame, name: str, n: int) -> None:
    kernel, ref = PAIR[name]
    if name == "corr" and n == 0:  # Qlib's mask calls rolling(0), which pandas refuses
        with pytest.raises(ValueError, match=r"Corr: window 0 \(expanding\) is not supported"):
            kernel(pl.col("x"), pl.col("y"), 0)
        return
    for x, y in (("x", "y"), ("y", "x"), ("x", "x")):
        sub = pd.DataFrame({"instrument": frame["instrument"], "x": frame[x], "y": frame[y]})
        want = reference(sub, lambda s, t: ref(s, t, n), pair=True)
        # pandas' running sums leave residues of about 2e-9 (a two-pair window's corr of 0.999999998)
        assert_close(run_kernel(sub, kernel, n, pair=True), want, rtol=1e-8)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.5])
def test_ema_alpha_and_fractional_span(frame: pd.DataFrame, alpha: float) -> None:
    want = reference(frame, lambda s: _ema(s, alpha))
    assert_close(run_kernel(frame, R.rolling_ema, alpha), want)


@pytest.mark.parametrize("n", WINDOWS)
@pytest.mark.parametrize("what", ["slope", "rsquare", "resi"])
def test_regression_matches_qlib_cython_kernels(frame: pd.DataFrame, what: str, n: int) -> None:
    """Against a transcription of Qlib's Cython kernels themselves: their running sums of squares lose digits
    (Rsquare of 20..70-valued prices is off by up to 2e-5), and a constant expanding window is 0/0 that their
    residue turns into 0, +-inf or NaN by chance (null here); elsewhere the values agree to 1e-4 rel."""
    kernel = {"slope": R.rolling_slope, "rsquare": R.rolling_rsquare, "resi": R.rolling_resi}[what]
    got = run_kernel(frame, kernel, n)
    want = reference(frame, lambda s: qlib_regression(_clean(s).to_numpy(), n, what))
    if what == "rsquare" and n:
        want[reference(frame, lambda s: _std_zero(s, n)).astype(bool)] = np.nan
    odd = np.isnan(got) & ~np.isnan(want)
    assert what == "rsquare" and n == 0 or not odd.any()
    want[odd] = np.nan
    assert_close(got, want, rtol=1e-4, atol=1e-6)
