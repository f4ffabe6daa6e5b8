"""Qlib's built-in feature sets as (column, expression) pairs, generated the way Qlib's loaders generate them.

* ``alpha158_columns(config)`` follows ``Alpha158DL.get_feature_config`` (qlib/contrib/data/loader.py): the
  config's keys ``kbar``, ``price``, ``volume`` and ``rolling`` switch the groups on, with the same knobs and
  defaults (``price``: ``windows`` default 0..4, ``feature`` default OPEN HIGH LOW CLOSE VWAP; ``volume``:
  ``windows`` default 0..4; ``rolling``: ``windows`` default 5 10 20 30 60, ``include`` / ``exclude`` by
  operator name). ``ALPHA158_HANDLER_CONFIG`` is the config Qlib's ``Alpha158`` handler passes.
* ``alpha360_columns()`` follows ``Alpha360DL.get_feature_config``.
* ``LABEL_COLUMNS`` is the label of both handlers (``get_label_config``).

The expression text is Qlib's, character for character (spacing included), so ``features show`` prints what a
Qlib user reads in Qlib's source. One quirk is kept on purpose: the MIN group is switched by the operator name
``LOW`` (Qlib tests ``use("LOW")`` for it), so ``include: [MIN]`` selects no MIN column, as in Qlib.

Known differences from Qlib's numbers for these sets (0.0003 % of Alpha158's cells on the real CSI300 data;
Alpha360 and the label are equal): RSQR on a constant window of a very high-priced stock, where Qlib's running
sums give 0, +-inf or NaN by rounding chance and ours is null. VSTD / WVMA on windows whose volumes (or |return|
x volume) are all 0, e.g. a suspension carried forward with zero volume, equal Qlib's: Std runs pandas' own
kernel, whose residue (divided by about 1e-12: values such as 1e8 .. 1e13) depends on where the series starts,
as Qlib's does (see ``features.expressions.numpy_fallback``). VWAP0 and the VWAP block of Alpha360 read
``$vwap``: all-null where the source has none (the real CSI300 data).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Columns = list[tuple[str, str]]

# Qlib's Alpha158 handler: k-bar, today's open/high/low/vwap over close, every rolling group.
ALPHA158_HANDLER_CONFIG: dict[str, Any] = {
    "kbar": {},
    "price": {"windows": [0], "feature": ["OPEN", "HIGH", "LOW", "VWAP"]},
    "rolling": {},
}

KBAR: Columns = [
    ("KMID", "($close-$open)/$open"),
    ("KLEN", "($high-$low)/$open"),
    ("KMID2", "($close-$open)/($high-$low+1e-12)"),
    ("KUP", "($high-Greater($open, $close))/$open"),
    ("KUP2", "($high-Greater($open, $close))/($high-$low+1e-12)"),
    ("KLOW", "(Less($open, $close)-$low)/$open"),
    ("KLOW2", "(Less($open, $close)-$low)/($high-$low+1e-12)"),
    ("KSFT", "(2*$close-$high-$low)/$open"),
    ("KSFT2", "(2*$close-$high-$low)/($high-$low+1e-12)"),
]

_SUM_ABS_CLOSE = "(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)"
_SUM_ABS_VOLUME = "(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)"
_WVMA_MOVE = "Abs($close/Ref($close, 1)-1)*$volume"

# (column prefix, the operator name `include` / `exclude` test, expression template over the window {d}),
# in Qlib's order.
ROLLING_GROUPS: list[tuple[str, str, str]] = [
    ("ROC", "ROC", "Ref($close, {d})/$close"),
    ("MA", "MA", "Mean($close, {d})/$close"),
    ("STD", "STD", "Std($close, {d})/$close"),
    ("BETA", "BETA", "Slope($close, {d})/$close"),
    ("RSQR", "RSQR", "Rsquare($close, {d})"),
    ("RESI", "RESI", "Resi($close, {d})/$close"),
    ("MAX", "MAX", "Max($high, {d})/$close"),
    ("MIN", "LOW", "Min($low, {d})/$close"),  # Qlib's gate name for MIN is LOW
    ("QTLU", "QTLU", "Quantile($close, {d}, 0.8)/$close"),
    ("QTLD", "QTLD", "Quantile($close, {d}, 0.2)/$close"),
    ("RANK", "RANK", "Rank($close, {d})"),
    ("RSV", "RSV", "($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)"),
    ("IMAX", "IMAX", "IdxMax($high, {d})/{d}"),
    ("IMIN", "IMIN", "IdxMin($low, {d})/{d}"),
    ("IMXD", "IMXD", "(IdxMax($high, {d})-IdxMin($low, {d}))/{d}"),
    ("CORR", "CORR", "Corr($close, Log($volume+1), {d})"),
    ("CORD", "CORD", "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), {d})"),
    ("CNTP", "CNTP", "Mean($close>Ref($close, 1), {d})"),
    ("CNTN", "CNTN", "Mean($close<Ref($close, 1), {d})"),
    ("CNTD", "CNTD", "Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})"),
    ("SUMP", "SUMP", "Sum(Greater($close-Ref($close, 1), 0), {d})/" + _SUM_ABS_CLOSE),
    ("SUMN", "SUMN", "Sum(Greater(Ref($close, 1)-$close, 0), {d})/" + _SUM_ABS_CLOSE),
    (
        "SUMD",
        "SUMD",
        "(Sum(Greater($close-Ref($close, 1), 0), {d})-Sum(Greater(Ref($close, 1)-$close, 0), {d}))/" + _SUM_ABS_CLOSE,
    ),
    ("VMA", "VMA", "Mean($volume, {d})/($volume+1e-12)"),
    ("VSTD", "VSTD", "Std($volume, {d})/($volume+1e-12)"),
    ("WVMA", "WVMA", f"Std({_WVMA_MOVE}, {{d}})/(Mean({_WVMA_MOVE}, {{d}})+1e-12)"),
    ("VSUMP", "VSUMP", "Sum(Greater($volume-Ref($volume, 1), 0), {d})/" + _SUM_ABS_VOLUME),
    ("VSUMN", "VSUMN", "Sum(Greater(Ref($volume, 1)-$volume, 0), {d})/" + _SUM_ABS_VOLUME),
    (
        "VSUMD",
        "VSUMD",
        "(Sum(Greater($volume-Ref($volume, 1), 0), {d})-Sum(Greater(Ref($volume, 1)-$volume, 0), {d}))/"
        + _SUM_ABS_VOLUME,
    ),
]


def _lag_ratio(field: str, lag: int, denominator: str) -> str:
    """Qlib's ``Ref($x, d)/den``, written ``$x/den`` for d = 0."""
    return f"Ref(${field}, {lag}){denominator}" if lag != 0 else f"${field}{denominator}"


def _ints(values: Iterable[Any], what: str) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"Alpha158 config: {what} must be integers, got {v!r}")
        out.append(v)
    return out


def alpha158_columns(config: Mapping[str, Any] | None = None) -> Columns:
    """Alpha158's (column, expression) pairs for ``config`` (default: Qlib's Alpha158 handler config)."""
    config = ALPHA158_HANDLER_CONFIG if config is None else config
    unknown = set(config) - {"kbar", "price", "volume", "rolling"}
    if unknown:
        raise ValueError(f"Alpha158 config: unknown groups {sorted(unknown)}; known: kbar, price, volume, rolling")
    columns: Columns = []
    if "kbar" in config:
        columns += KBAR
    if "price" in config:
        price = config["price"] or {}
        windows = _ints(price.get("windows", range(5)), "price windows")
        for name in price.get("feature", ["OPEN", "HIGH", "LOW", "CLOSE", "VWAP"]):
            field = str(name).lower()
            columns += [(f"{field.upper()}{d}", _lag_ratio(field, d, "/$close")) for d in windows]
    if "volume" in config:
        windows = _ints((config["volume"] or {}).get("windows", range(5)), "volume windows")
        columns += [(f"VOLUME{d}", _lag_ratio("volume", d, "/($volume+1e-12)")) for d in windows]
    if "rolling" in config:
        rolling = config["rolling"] or {}
        windows = _ints(rolling.get("windows", [5, 10, 20, 30, 60]), "rolling windows")
        include = rolling.get("include")
        exclude = rolling.get("exclude") or []
        for prefix, gate, template in ROLLING_GROUPS:
            if gate in exclude or (include is not None and gate not in include):
                continue
            columns += [(f"{prefix}{d}", template.format(d=d)) for d in windows]
    return columns


ALPHA360_LAGS = 60
# (column prefix, field); the volume block divides by ($volume+1e-12), the price blocks by $close.
ALPHA360_BLOCKS = [("CLOSE", "close"), ("OPEN", "open"), ("HIGH", "high"), ("LOW", "low"), ("VWAP", "vwap")]


def alpha360_columns() -> Columns:
    """Alpha360's (column, expression) pairs: 60 days (59 .. 0) of each price over today's close, then volume."""
    columns: Columns = []
    blocks = [(p, f, "/$close") for p, f in ALPHA360_BLOCKS] + [("VOLUME", "volume", "/($volume+1e-12)")]
    for prefix, field, denominator in blocks:
        columns += [(f"{prefix}{i}", _lag_ratio(field, i, denominator)) for i in range(ALPHA360_LAGS - 1, -1, -1)]
    return columns


LABEL_COLUMNS: Columns = [("LABEL0", "Ref($close, -2)/Ref($close, -1) - 1")]
