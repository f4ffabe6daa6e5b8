"""Alpha158, Alpha360 and LABEL0 as Qlib's expression texts, generated as ``qlib/contrib/data/loader.py``'s
Alpha158DL / Alpha360DL generate them (Alpha158 with the handler's default config), for the parity tests."""

from __future__ import annotations

WINDOWS = (5, 10, 20, 30, 60)
LABEL = [("LABEL0", "Ref($close, -2)/Ref($close, -1) - 1")]


def alpha360() -> list[tuple[str, str]]:
    out = []
    for field in ("close", "open", "high", "low", "vwap"):
        out += [(f"{field.upper()}{i}", f"Ref(${field}, {i})/$close") for i in range(59, 0, -1)]
        out.append((f"{field.upper()}0", f"${field}/$close"))
    out += [(f"VOLUME{i}", f"Ref($volume, {i})/($volume+1e-12)") for i in range(59, 0, -1)]
    out.append(("VOLUME0", "$volume/($volume+1e-12)"))
    return out


_KBAR = [
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
_ROLLING = [
    ("ROC", "Ref($close, {d})/$close"),
    ("MA", "Mean($close, {d})/$close"),
    ("STD", "Std($close, {d})/$close"),
    ("BETA", "Slope($close, {d})/$close"),
    ("RSQR", "Rsquare($close, {d})"),
    ("RESI", "Resi($close, {d})/$close"),
    ("MAX", "Max($high, {d})/$close"),
    ("MIN", "Min($low, {d})/$close"),
    ("QTLU", "Quantile($close, {d}, 0.8)/$close"),
    ("QTLD", "Quantile($close, {d}, 0.2)/$close"),
    ("RANK", "Rank($close, {d})"),
    ("RSV", "($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)"),
    ("IMAX", "IdxMax($high, {d})/{d}"),
    ("IMIN", "IdxMin($low, {d})/{d}"),
    ("IMXD", "(IdxMax($high, {d})-IdxMin($low, {d}))/{d}"),
    ("CORR", "Corr($close, Log($volume+1), {d})"),
    ("CORD", "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), {d})"),
    ("CNTP", "Mean($close>Ref($close, 1), {d})"),
    ("CNTN", "Mean($close<Ref($close, 1), {d})"),
    ("CNTD", "Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})"),
    ("SUMP", "Sum(Greater($close-Ref($close, 1), 0), {d})/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)"),
    ("SUMN", "Sum(Greater(Ref($close, 1)-$close, 0), {d})/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)"),
    ("SUMD", "(Sum(Greater($close-Ref($close, 1), 0), {d})-Sum(Greater(Ref($close, 1)-$close, 0), {d}))"
     "/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)"),
    ("VMA", "Mean($volume, {d})/($volume+1e-12)"),
    ("VSTD", "Std($volume, {d})/($volume+1e-12)"),
    ("WVMA", "Std(Abs($close/Ref($close, 1)-1)*$volume, {d})/(Mean(Abs($close/Ref($close, 1)-1)*$volume, {d})+1e-12)"),
    ("VSUMP", "Sum(Greater($volume-Ref($volume, 1), 0), {d})/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)"),
    ("VSUMN", "Sum(Greater(Ref($volume, 1)-$volume, 0), {d})/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)"),
    ("VSUMD", "(Sum(Greater($volume-Ref($volume, 1), 0), {d})-Sum(Greater(Ref($volume, 1)-$volume, 0), {d}))"
     "/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)"),
]  # fmt: skip


def alpha158() -> list[tuple[str, str]]:
    out = list(_KBAR)
    out += [(f"{f}0", f"${f.lower()}/$close") for f in ("OPEN", "HIGH", "LOW", "VWAP")]
    for group, template in _ROLLING:
        out += [(f"{group}{d}", template.format(d=d)) for d in WINDOWS]
    return out
