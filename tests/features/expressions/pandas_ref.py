"""A slow, literal pandas/numpy evaluator of expression trees with Qlib 0.9.7's semantics (``qlib/data/ops.py``),
used as the reference of the operator tests.

Each instrument is one series over its full span (every calendar day from its first to its last bar, NaN on
days without a bar), fields in float32, as Qlib's full-history ``D.features`` sees them; numpy does the
element-wise work (so its dtype rules apply), pandas the rolling work; the result is cast to float32 like
Qlib's expression provider. Cross-sectional operators follow this engine's documented definitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from features.expressions import Call, Field, Literal, Node

Panel = dict[str, dict[str, np.ndarray]]  # instrument -> field -> values; "_date" -> its span's dates

_NP = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Power": np.power,
    "Greater": np.maximum, "Less": np.minimum, "Gt": np.greater, "Ge": np.greater_equal, "Lt": np.less,
    "Le": np.less_equal, "Eq": np.equal, "Ne": np.not_equal, "And": np.bitwise_and, "Or": np.bitwise_or,
}  # fmt: skip
_PANDAS = {"Mean": "mean", "Sum": "sum", "Std": "std", "Var": "var", "Max": "max", "Min": "min", "Count": "count",
           "Skew": "skew", "Kurt": "kurt", "Med": "median"}  # fmt: skip


def panel(bars: pl.DataFrame, calendar: pl.Series, fields: list[str]) -> Panel:
    cal = calendar.to_list()
    index = {d: i for i, d in enumerate(cal)}
    out: Panel = {}
    for (inst,), group in bars.sort("date").group_by(["instrument"], maintain_order=True):
        pos = np.array([index[d] for d in group["date"].to_list()])
        first, last = pos.min(), pos.max()
        series = {"_date": np.array(cal[first : last + 1], dtype=object)}
        for f in fields:
            values = np.full(last - first + 1, np.nan, dtype=np.float32)
            if f in group.columns:
                values[pos - first] = group[f].cast(pl.Float32).fill_null(np.nan).to_numpy()
            series[f] = values
        out[inst] = series
    return dict(sorted(out.items()))


def _window(s: pd.Series, n: int):
    return s.expanding(min_periods=1) if n == 0 else s.rolling(n, min_periods=1)


def _float(a):
    return a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == bool else a


def _mad(a: np.ndarray) -> float:
    v = a[~np.isnan(a)]
    return np.mean(np.abs(v - v.mean()))


def _wma(a: np.ndarray) -> float:
    w = np.arange(1, len(a) + 1) / (len(a) * (len(a) + 1) / 2)
    return np.nanmean(w * a)


def _ema_expanding(a: np.ndarray) -> float:
    w = (1 - 2 / (1 + len(a))) ** np.arange(len(a))[::-1]
    return np.nansum(w / w.sum() * a)


def _regression(a: np.ndarray, what: str) -> float:
    """Least squares of a window on its positions, NaN elements left out (the others keep their places)."""
    p = np.arange(a.size, dtype=np.float64)
    ok = ~np.isnan(a)
    if ok.sum() < 2:
        return np.nan
    dp, da = p[ok] - p[ok].mean(), a[ok] - a[ok].mean()
    sxx, sxy, syy = (dp * dp).sum(), (dp * da).sum(), (da * da).sum()
    if what == "Slope":
        return sxy / sxx
    if what == "Rsquare":
        return sxy * sxy / (sxx * syy) if syy > 0 else np.nan
    return a[-1] - a[ok].mean() - sxy / sxx * (p[-1] - p[ok].mean())


def _std_zero(s: pd.Series, n: int) -> np.ndarray:
    return np.isclose(s.rolling(n, min_periods=1).std(), 0, atol=2e-5)


def _series_op(op: str, args: list, node: Call) -> np.ndarray:
    x = args[0]
    s = pd.Series(_float(x).astype(np.float64) if x.dtype == bool else x)
    n = int(args[1]) if len(args) > 1 and op not in ("Corr", "Cov") else 0
    if op == "Ref":
        return np.full(x.size, _float(x)[0]) if n == 0 else pd.Series(_float(x)).shift(n).to_numpy()
    if op == "Delta":
        return _float(x) - (_float(x)[0] if n == 0 else pd.Series(_float(x)).shift(n).to_numpy())
    if op in _PANDAS:
        return getattr(_window(s, n), _PANDAS[op])().to_numpy()
    clean = s.replace([np.inf, -np.inf], np.nan)
    if op == "Quantile":
        return _window(s, n).quantile(float(args[2])).to_numpy()
    if op == "Rank":
        return _window(s, n).rank(pct=True).to_numpy()
    if op in ("Mad", "WMA"):
        return _window(clean, n).apply(_mad if op == "Mad" else _wma, raw=True).to_numpy()
    if op in ("IdxMax", "IdxMin"):
        f = np.argmax if op == "IdxMax" else np.argmin
        return _window(clean, n).apply(lambda a: f(a) + 1, raw=True).to_numpy()
    if op in ("Slope", "Rsquare", "Resi"):
        out = _window(clean, n).apply(lambda a: _regression(a, op), raw=True).to_numpy().copy()
        if op == "Rsquare" and n:
            out[_std_zero(s, n)] = np.nan
        return out
    if op == "EMA":
        span = node.args[1]
        if span.is_int and span.value == 0:
            return _window(clean, 0).apply(_ema_expanding, raw=True).to_numpy()
        kw = {"span": span.value} if span.is_int else {"alpha": span.value}
        return s.ewm(min_periods=1, **kw).mean().to_numpy()
    y = pd.Series(args[1].astype(np.float64))
    n = int(args[2])
    if op == "Cov":
        return _window(s, n).cov(y).to_numpy()
    out = _window(s, n).corr(y).to_numpy().copy()
    out[_std_zero(s, n) | _std_zero(y, n)] = np.nan
    return out


def _cross_section(op: str, values: dict[str, np.ndarray], data: Panel) -> dict[str, np.ndarray]:
    frame = pd.DataFrame(
        {
            "inst": np.concatenate([[k] * v.size for k, v in values.items()]),
            "date": np.concatenate([data[k]["_date"] for k in values]),
            "x": np.concatenate([_float(v).astype(np.float64) for v in values.values()]),
        }
    )
    by = frame.groupby("date")["x"]
    if op == "CSRank":
        out = by.rank(pct=True)
    else:
        finite = frame["x"].where(np.isfinite(frame["x"]))
        g = finite.groupby(frame["date"])
        centred = finite - g.transform("mean")
        out = centred / g.transform("std") if op == "CSZScore" else centred
    res, at = {}, 0
    for k, v in values.items():
        res[k] = out.to_numpy()[at : at + v.size]
        at += v.size
    return res


def evaluate(node: Node, data: Panel) -> dict[str, np.ndarray | float]:
    """Per instrument, the expression's values over its span (before the final float32 cast)."""
    if isinstance(node, Field):
        return {k: v[node.name] for k, v in data.items()}
    if isinstance(node, Literal):
        return {k: node.value for k in data}
    args = [evaluate(a, data) for a in node.args]
    op = node.op
    if op in ("CSRank", "CSZScore", "CSDemean"):
        return _cross_section(op, args[0], data)
    out = {}
    with np.errstate(all="ignore"):
        for k in data:
            vals = [a[k] for a in args]
            if op in _NP:
                out[k] = _NP[op](*[v if op in ("And", "Or") else _float(v) for v in vals])
            elif op in ("Abs", "Log"):
                out[k] = getattr(np, op.lower())(_float(vals[0]))
            elif op == "Sign":
                out[k] = np.sign(vals[0].astype(np.float32))
            elif op == "Not":
                out[k] = np.bitwise_not(vals[0])
            elif op == "If":
                out[k] = np.where(vals[0], vals[1], vals[2])
            else:
                out[k] = _series_op(op, vals, node)
    return out


def reference(columns: list[tuple[str, Node]], data: Panel) -> pl.DataFrame:
    """instrument, date and each column as Float32 (NaN as null), like ``compute_columns``' output."""
    parts = {"instrument": [], "date": []}
    values = {name: evaluate(node, data) for name, node in columns}
    for k, series in data.items():
        parts["instrument"] += [k] * series["_date"].size
        parts["date"] += list(series["_date"])
    cols = [pl.Series("instrument", parts["instrument"]), pl.Series("date", parts["date"], dtype=pl.Date)]
    for name, _ in columns:
        v = np.concatenate([np.asarray(values[name][k], dtype=np.float64).astype(np.float32) for k in data])
        cols.append(pl.Series(name, v, nan_to_null=True))
    return pl.DataFrame(cols)
