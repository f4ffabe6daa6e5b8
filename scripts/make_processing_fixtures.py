"""Generate the processing parity fixtures with pyqlib 0.9.7 (dev only; needs /work/qlibenv).

    /work/qlibenv/bin/python scripts/make_processing_fixtures.py

A small RANDOM panel (NaNs, ±inf, a constant column, ties, missing rows, late starters, early leavers, an
all-NaN label day, non-member days) goes through Qlib's own processor classes, DataHandlerLP pipelines,
DatasetH and TSDatasetH / TSDataSampler. Inputs and outputs are written to tests/fixtures/processing/:

    inputs.parquet           instrument, date, features..., LABEL0 (before membership)
    membership.parquet       instrument, start_date, end_date
    proc_<case>.parquet      one processor applied to the member rows
    handler_<cfg>_<DK>.parquet  DK_I / DK_L of a DataHandlerLP pipeline
    ds_<cfg>_<view>_<seg>_<fill>.npz  dataset views (x, label, dates, instruments)
    meta.json                the cases (processor kwargs, fit window, segments, step_len, fitted statistics)
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402

from processing.config import ALPHA158_20  # noqa: E402
from processing.serial import encode_floats  # noqa: E402

OUT = REPO / "tests" / "fixtures" / "processing"
SEED = 20240611
N_INST, N_DAYS = 24, 72
START = dt.date(2021, 3, 1)
FIT = ("2021-03-01", "2021-04-16")
HANDLER_RANGE = ("2021-03-03", "2021-06-04")
# Valid starts on a Saturday (bisect onto the next trading day), test runs past the data's end.
SEGMENTS = {
    "train": ("2021-03-01", "2021-04-16"),
    "valid": ("2021-04-17", "2021-05-07"),
    "test": ("2021-05-10", "2021-06-30"),
}
STEP_LEN = 7
FEATURES = ["KMID", *ALPHA158_20[:3], "CONST1", *ALPHA158_20[3:10], "TIES", "INFCOL", *ALPHA158_20[10:], "SPARSE"]
LABEL = "LABEL0"


def trading_days() -> list[dt.date]:
    days, d = [], START
    while len(days) < N_DAYS:
        if d.weekday() < 5 and d != dt.date(2021, 4, 5):  # one weekday holiday
            days.append(d)
        d += dt.timedelta(days=1)
    return days


def make_inputs(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    days = trading_days()
    insts = [f"S{'HZ'[i % 2]}{600000 + 7 * i}" for i in range(N_INST)]
    idx = pd.MultiIndex.from_product([days, insts], names=["date", "instrument"])
    n = len(idx)
    x = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    df = pd.DataFrame(x, index=idx, columns=FEATURES)
    df["CONST1"] = np.float32(1.0)
    df["TIES"] = np.round(rng.normal(size=n) * 2).astype(np.float32)
    inf_at = rng.random(n) < 0.04
    df.loc[inf_at, "INFCOL"] = np.where(rng.random(inf_at.sum()) < 0.5, np.inf, -np.inf).astype(np.float32)
    day0 = idx.get_level_values("date") == days[5]
    df.loc[day0, "INFCOL"] = np.float32(np.inf)  # a day with no finite INFCOL value
    df.loc[rng.random(n) < 0.7, "SPARSE"] = np.nan
    for col in FEATURES:
        if col not in ("CONST1",):
            df.loc[rng.random(n) < 0.04, col] = np.nan
    lab = np.round(rng.normal(size=n) * 50).astype(np.float32) / np.float32(1000)  # ties
    lab[rng.random(n) < 0.08] = np.nan
    lab[rng.random(n) < 0.004] = np.inf
    df[LABEL] = lab
    dates = idx.get_level_values("date")
    df.loc[dates == days[30], LABEL] = np.nan  # a whole day without labels (dropped by DropnaLabel)
    df.loc[dates >= days[-2], LABEL] = np.nan  # the last two days have no label yet
    df = df.reset_index()
    # Missing rows: random holes, two late starters, one early leaver.
    keep = rng.random(n) > 0.07
    keep &= ~((df["instrument"] == insts[3]) & (df["date"] < days[20]))
    keep &= ~((df["instrument"] == insts[4]) & (df["date"] < days[40]))
    keep &= ~((df["instrument"] == insts[5]) & (df["date"] > days[50]))
    df = df[keep].reset_index(drop=True)
    membership = pd.DataFrame(
        {
            "instrument": [*insts[:-2], insts[-2], insts[-2], insts[-1]],
            "start_date": [days[0]] * (N_INST - 2) + [days[0], days[35], days[10]],
            "end_date": [days[-1]] * (N_INST - 2) + [days[25], days[-1], days[60]],
        }
    )
    return df, membership


def apply_membership(df: pd.DataFrame, membership: pd.DataFrame) -> pd.DataFrame:
    m = df[["instrument", "date"]].reset_index().merge(membership, on="instrument")
    inside = m[(m["date"] >= m["start_date"]) & (m["date"] <= m["end_date"])]["index"].unique()
    return df.loc[np.sort(inside)]


def to_qlib(df: pd.DataFrame) -> pd.DataFrame:
    """Qlib's layout: (datetime, instrument) index, ("feature", name) / ("label", name) columns."""
    out = df.rename(columns={"date": "datetime"}).copy()
    out["datetime"] = pd.to_datetime(out["datetime"])
    out = out.set_index(["datetime", "instrument"]).sort_index()
    feats = [c for c in out.columns if c != LABEL]
    out.columns = pd.MultiIndex.from_tuples([("feature", c) for c in feats] + [("label", LABEL)])
    return out


def from_qlib(df: pd.DataFrame) -> pd.DataFrame:
    flat = df.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [c[1] for c in flat.columns]
    flat = flat.reset_index()
    flat["date"] = flat.pop("datetime").dt.date
    cols = ["instrument", "date"] + [c for c in flat.columns if c not in ("instrument", "date")]
    return flat[cols]


def write(df: pd.DataFrame, name: str) -> None:
    pl.from_pandas(df).with_columns(pl.col(pl.Float64).cast(pl.Float32)).write_parquet(OUT / f"{name}.parquet")


def processor_cases() -> dict[str, tuple[str, dict]]:
    fit = {"fit_start_time": FIT[0], "fit_end_time": FIT[1]}
    return {
        "dropna_feature": ("DropnaProcessor", {"fields_group": "feature"}),
        "dropna_all": ("DropnaProcessor", {}),
        "dropna_label": ("DropnaLabel", {}),
        "process_inf": ("ProcessInf", {}),
        "fillna_all": ("Fillna", {}),
        "fillna_feature": ("Fillna", {"fields_group": "feature", "fill_value": -1}),
        "zscore_feature": ("ZScoreNorm", {**fit, "fields_group": "feature"}),
        "zscore_all": ("ZScoreNorm", fit),
        "robust_clip": ("RobustZScoreNorm", {**fit, "fields_group": "feature", "clip_outlier": True}),
        "robust_noclip": ("RobustZScoreNorm", {**fit, "fields_group": "feature", "clip_outlier": False}),
        "minmax_feature": ("MinMaxNorm", {**fit, "fields_group": "feature"}),
        "cszscore_label": ("CSZScoreNorm", {"fields_group": "label"}),
        "cszscore_feature": ("CSZScoreNorm", {"fields_group": "feature"}),
        "csrobust_feature": ("CSZScoreNorm", {"fields_group": "feature", "method": "robust"}),
        "csrank_label": ("CSRankNorm", {"fields_group": "label"}),
        "csrank_feature": ("CSRankNorm", {"fields_group": "feature"}),
        "filtercol": ("FilterCol", {"fields_group": "feature", "col_list": ["TIES", "KLEN", "ROC60", "STD5"]}),
    }


# Handler pipelines: the project's named configs plus an "independent" variant.
def handler_cases() -> dict[str, dict]:
    from processing.config import get_handler_config

    cases = {}
    for name in ("alpha158", "alpha360", "alpha360_rnn", "alpha158_20"):
        cfg = get_handler_config(name).to_dict()
        cases[name] = {"shared": cfg["shared"], "infer": cfg["infer"], "learn": cfg["learn"], "process_type": "append"}
    cases["independent"] = {
        "shared": [{"class": "ProcessInf", "kwargs": {}}],
        "infer": [
            {"class": "RobustZScoreNorm", "kwargs": {"fields_group": "feature"}},
            {"class": "Fillna", "kwargs": {}},
        ],
        "learn": [{"class": "DropnaLabel", "kwargs": {}}, {"class": "CSRankNorm", "kwargs": {"fields_group": "label"}}],
        "process_type": "independent",
    }
    return cases


def qlib_processor(name: str, kwargs: dict):
    from qlib.data.dataset import processor as P

    return getattr(P, name)(**kwargs)


def fitted_stats(proc) -> dict:
    out = {}
    for attr in ("mean_train", "std_train", "min_val", "max_val"):
        if hasattr(proc, attr):
            out[attr] = encode_floats(np.asarray(getattr(proc, attr), float))
    return out


def main() -> None:
    warnings.filterwarnings("ignore")
    from qlib.data.dataset import DatasetH, TSDatasetH
    from qlib.data.dataset.handler import DataHandlerLP
    from qlib.data.dataset.loader import StaticDataLoader

    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    raw, membership = make_inputs(rng)
    write(raw, "inputs")
    pl.from_pandas(membership).write_parquet(OUT / "membership.parquet")
    member = apply_membership(raw, membership)
    qdf = to_qlib(member)
    meta: dict = {"fit": FIT, "handler_range": HANDLER_RANGE, "segments": SEGMENTS, "step_len": STEP_LEN}

    meta["processors"] = {}
    for case, (name, kwargs) in processor_cases().items():
        proc = qlib_processor(name, kwargs)
        df = qdf.copy()
        proc.fit(df)
        res = proc(df)
        write(from_qlib(res), f"proc_{case}")
        meta["processors"][case] = {"class": name, "kwargs": kwargs, "stats": fitted_stats(proc)}

    meta["handlers"] = {}
    for case, spec in handler_cases().items():

        def build(stage: str, spec=spec) -> list:
            procs = []
            for p in spec[stage]:
                kw = dict(p["kwargs"])
                if p["class"] in ("ZScoreNorm", "RobustZScoreNorm", "MinMaxNorm"):
                    kw.update(fit_start_time=FIT[0], fit_end_time=FIT[1])
                procs.append(qlib_processor(p["class"], kw))
            return procs

        handler = DataHandlerLP(
            start_time=HANDLER_RANGE[0],
            end_time=HANDLER_RANGE[1],
            data_loader=StaticDataLoader(qdf.copy()),
            shared_processors=build("shared"),
            infer_processors=build("infer"),
            learn_processors=build("learn"),
            process_type=spec["process_type"],
        )
        for key in (DataHandlerLP.DK_I, DataHandlerLP.DK_L):
            write(from_qlib(handler.fetch(data_key=key)), f"handler_{case}_{key}")
        meta["handlers"][case] = spec

        if case not in ("alpha360_rnn", "alpha158_20"):
            continue
        # Flat view (DatasetH) and sequence view (TSDatasetH) of the benchmark handlers.
        ds = DatasetH(handler=handler, segments=SEGMENTS)
        for seg in SEGMENTS:
            if seg == "test":
                x = ds.prepare(seg, col_set="feature", data_key=DataHandlerLP.DK_I)
                y = ds.prepare(seg, col_set="label", data_key=DataHandlerLP.DK_R).reindex(x.index)
            else:
                both = ds.prepare(seg, col_set=["feature", "label"], data_key=DataHandlerLP.DK_L)
                x, y = both["feature"], both["label"]
            idx = x.index
            np.savez_compressed(
                OUT / f"ds_{case}_flat_{seg}.npz",
                x=x.to_numpy(np.float32),
                label=y.to_numpy(np.float32)[:, 0],
                dates=idx.get_level_values("datetime").values.astype("datetime64[D]"),
                instruments=idx.get_level_values("instrument").to_numpy().astype(str),
            )
        tsds = TSDatasetH(handler=handler, segments=SEGMENTS, step_len=STEP_LEN)
        for seg in SEGMENTS:
            key = DataHandlerLP.DK_I if seg == "test" else DataHandlerLP.DK_L
            sampler = tsds.prepare(seg, col_set=["feature", "label"], data_key=key)
            idx = sampler.get_index()
            for fill in ("none", "ffill", "ffill+bfill"):
                sampler.config(fillna_type=fill)
                data = sampler[np.arange(len(sampler))]
                np.savez_compressed(
                    OUT / f"ds_{case}_seq_{seg}_{fill.replace('+', '_')}.npz",
                    x=data[:, :, :-1].astype(np.float32),
                    label=data[:, -1, -1].astype(np.float32),
                    dates=idx.get_level_values("datetime").values.astype("datetime64[D]"),
                    instruments=idx.get_level_values("instrument").to_numpy().astype(str),
                )
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1e6:.2f} MB, to {OUT}")


if __name__ == "__main__":
    main()
