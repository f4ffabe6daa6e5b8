"""Qlib's own benchmark models on the same data, split and seeds as ``python -m pipeline benchmark`` (dev only).

    /work/qlibenv/bin/python bench/qlib_reference.py --data ../shared/data/qlib_cn \
        --out data/csi300/qlib_reference --models gru,lstm,gru_ts --seeds 0,1 --max-epochs 1 --threads 1

Needs ``pyqlib`` (0.9.x), which is never a dependency of the project. For every model and seed it builds Qlib's
own data handler (Alpha360, or Alpha158 with the 20 columns of the benchmark YAML and a TSDatasetH of 20 days),
trains Qlib's model class with the YAML's hyperparameters (``n_epochs`` capped by ``--max-epochs``), predicts the
test segment, and writes ``<out>/<model>_e<n_epochs>_seed<seed>.parquet`` (instrument, date, score) plus one line of
``<out>/runs.jsonl`` with the wall times. ``python -m pipeline benchmark --qlib-reference <out>`` then evaluates
those scores with the same signal analysis and backtest as our models (they match Qlib's ``SigAnaRecord`` and
``PortAnaRecord`` to 1e-14, see scripts/parity_backtest.py), so the two rows differ only in the implementation
that produced the scores.

The graph models (gats, gats_ts, hist, igmtf) start, as in Qlib, from a trained base LSTM: the script first
trains Qlib's own LSTM (lstm, or lstm_ts for gats_ts) with the same seed and epoch budget, keeps its state_dict
in ``<out>/base_<model>_e<n>_seed<s>.pt`` and passes it as ``model_path``. HIST also needs ``--concepts``: a CSV of
``instrument, concept`` rows (the warehouse's table ``concepts``), written into Qlib's stock2concept / stock_index
files.

Train time is the wall time of Qlib's ``model.fit`` (it includes Qlib's own preparation of the train and valid
frames), on ``--threads`` torch threads; the handler's feature computation is timed separately.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import platform
import time
from pathlib import Path

# The 20 Alpha158 columns of Qlib's *_Alpha158 RNN benchmark YAMLs.
ALPHA158_20 = [
    "RESI5", "WVMA5", "RSQR5", "KLEN", "RSQR10", "CORR5", "CORD5", "CORR10", "ROC60", "RESI10",
    "VSTD5", "RSQR60", "CORR60", "WVMA60", "STD5", "RSQR20", "CORD60", "CORD10", "CORR20", "KLOW",
]  # fmt: skip

# (module, class, kwargs of the benchmark YAML, handler). The YAMLs of the RNNs set hidden 64, 2 layers, dropout 0,
# 200 epochs, batch 800 and metric loss (RNN below); the zoo's YAMLs are given whole, over their classes' defaults.
RNN = {"hidden_size": 64, "num_layers": 2, "dropout": 0.0, "n_epochs": 200, "batch_size": 800, "metric": "loss"}
TCN = {"num_layers": 5, "dropout": 0.5, "n_epochs": 200, "early_stop": 20, "batch_size": 2000, "metric": "loss"}
GRAPH = {"hidden_size": 64, "num_layers": 2, "n_epochs": 200, "lr": 1e-4, "early_stop": 20, "base_model": "LSTM"}
MODELS = {
    "lstm": ("qlib.contrib.model.pytorch_lstm", "LSTM", {**RNN, "d_feat": 6, "lr": 1e-3, "early_stop": 20}, "alpha360"),
    "gru": ("qlib.contrib.model.pytorch_gru", "GRU", {**RNN, "d_feat": 6, "lr": 1e-3, "early_stop": 20}, "alpha360"),
    "alstm": (
        "qlib.contrib.model.pytorch_alstm",
        "ALSTM",
        {**RNN, "d_feat": 6, "lr": 1e-3, "early_stop": 20, "rnn_type": "GRU"},
        "alpha360",
    ),
    "lstm_ts": (
        "qlib.contrib.model.pytorch_lstm_ts",
        "LSTM",
        {**RNN, "d_feat": 20, "lr": 1e-3, "early_stop": 10},
        "alpha158",
    ),
    "gru_ts": (
        "qlib.contrib.model.pytorch_gru_ts",
        "GRU",
        {**RNN, "d_feat": 20, "lr": 2e-4, "early_stop": 10},
        "alpha158",
    ),
    "alstm_ts": (
        "qlib.contrib.model.pytorch_alstm_ts",
        "ALSTM",
        {**RNN, "d_feat": 20, "lr": 1e-3, "early_stop": 10, "rnn_type": "GRU"},
        "alpha158",
    ),
    # Transformer / Localformer: the YAMLs set only d_feat (Alpha360) and the seed; the rest are class defaults
    # (n_epochs 100 written out: the run record names the epoch budget).
    "transformer": (
        "qlib.contrib.model.pytorch_transformer",
        "TransformerModel",
        {"d_feat": 6, "n_epochs": 100},
        "alpha360",
    ),
    "transformer_ts": (
        "qlib.contrib.model.pytorch_transformer_ts",
        "TransformerModel",
        {"d_feat": 20, "n_epochs": 100},
        "alpha158",
    ),
    "localformer": (
        "qlib.contrib.model.pytorch_localformer",
        "LocalformerModel",
        {"d_feat": 6, "n_epochs": 100},
        "alpha360",
    ),
    "localformer_ts": (
        "qlib.contrib.model.pytorch_localformer_ts",
        "LocalformerModel",
        {"d_feat": 20, "n_epochs": 100},
        "alpha158",
    ),
    "tcn": (
        "qlib.contrib.model.pytorch_tcn",
        "TCN",
        {**TCN, "d_feat": 6, "n_chans": 128, "kernel_size": 3, "lr": 1e-3},
        "alpha360",
    ),
    "tcn_ts": (
        "qlib.contrib.model.pytorch_tcn_ts",
        "TCN",
        {**TCN, "d_feat": 20, "n_chans": 32, "kernel_size": 7, "lr": 1e-4},
        "alpha158",
    ),
    "gats": ("qlib.contrib.model.pytorch_gats", "GATs", {**GRAPH, "d_feat": 6, "dropout": 0.7}, "alpha360"),
    "gats_ts": (
        "qlib.contrib.model.pytorch_gats_ts",
        "GATs",
        {**GRAPH, "d_feat": 20, "dropout": 0.7, "early_stop": 10},
        "alpha158",
    ),
    "hist": (
        "qlib.contrib.model.pytorch_hist",
        "HIST",
        {**GRAPH, "d_feat": 6, "dropout": 0.0, "metric": "ic"},
        "alpha360",
    ),
    "igmtf": (
        "qlib.contrib.model.pytorch_igmtf",
        "IGMTF",
        {**GRAPH, "d_feat": 6, "dropout": 0.0, "metric": "ic"},
        "alpha360",
    ),
}
# The graph models start from a trained base LSTM (Qlib loads a state_dict from model_path): here Qlib's own
# LSTM of the same seed and epoch budget, trained by this script first (and kept in --out for the next model).
BASE_OF = {"gats": "lstm", "hist": "lstm", "igmtf": "lstm", "gats_ts": "lstm_ts"}


def parse_segments(text: str) -> dict[str, tuple[str, str]]:
    parts = [p.split(":") for p in text.split(",")]
    return dict(zip(("train", "valid", "test"), [(a, b) for a, b in parts], strict=True))


def build_handler(kind: str, segments: dict[str, tuple[str, str]], market: str):
    from qlib.contrib.data.handler import Alpha158, Alpha360

    norm = [
        {"class": "RobustZScoreNorm", "kwargs": {"fields_group": "feature", "clip_outlier": True}},
        {"class": "Fillna", "kwargs": {"fields_group": "feature"}},
    ]
    if kind == "alpha158":
        norm = [{"class": "FilterCol", "kwargs": {"fields_group": "feature", "col_list": ALPHA158_20}}, *norm]
    kwargs = {
        "start_time": segments["train"][0],
        "end_time": segments["test"][1],
        "fit_start_time": segments["train"][0],
        "fit_end_time": segments["train"][1],
        "instruments": market,
        "infer_processors": norm,
        "learn_processors": [{"class": "DropnaLabel"}, {"class": "CSRankNorm", "kwargs": {"fields_group": "label"}}],
    }
    return (Alpha158 if kind == "alpha158" else Alpha360)(**kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/qlib_cn")
    parser.add_argument("--out", default="data/csi300/qlib_reference")
    parser.add_argument("--market", default="csi300")
    parser.add_argument("--models", default="gru,lstm,gru_ts")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap on n_epochs (default: the YAML's 200)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--kernels", type=int, default=1, help="Qlib worker processes for the features")
    parser.add_argument("--gpu", type=int, default=0, help="Qlib's GPU argument (falls back to the CPU without CUDA)")
    parser.add_argument("--concepts", help="HIST only: a CSV of instrument, concept rows (Qlib's stock2concept)")
    parser.add_argument("--segments", default="2010-01-01:2016-12-31,2017-01-01:2018-12-31,2019-01-01:2026-05-08")
    args = parser.parse_args()

    import importlib

    import numpy as np
    import pandas as pd
    import qlib
    import torch
    from qlib.data.dataset import DatasetH, TSDatasetH
    from qlib.workflow import R

    if args.threads:
        torch.set_num_threads(args.threads)
    qlib.init(provider_uri=str(Path(args.data).resolve()), region="cn", kernels=args.kernels)
    segments = parse_segments(args.segments)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Qlib's recorder has mlflow write run artifacts (and a copy of `git diff`) under ./mlruns of the working
    # directory: work inside --out so that nothing lands in the checkout.
    os.chdir(out)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; valid: {', '.join(MODELS)}")
    seeds = [int(s) for s in args.seeds.split(",")]

    handlers = {}
    for kind in sorted({MODELS[m][3] for m in names}):
        # The processed handler is kept in --out: computing Qlib's features takes minutes per handler.
        cache = out / f"handler_{kind}_{args.market}_{args.segments.replace(':', '_').replace(',', '_')}.pkl"
        t0 = time.perf_counter()
        cached = cache.is_file()
        if cached:
            with open(cache, "rb") as fh:
                handlers[kind] = pickle.load(fh)
        else:
            handlers[kind] = build_handler(kind, segments, args.market)
            # dump_all: Qlib's handlers leave their data out of a pickle by default.
            handlers[kind].to_pickle(cache.with_suffix(".tmp"), dump_all=True)
            cache.with_suffix(".tmp").replace(cache)
        print(f"qlib handler {kind}: {time.perf_counter() - t0:.1f} s ({'cached' if cached else 'built'})", flush=True)

    def dataset_for(name: str):
        kind = MODELS[name][3]
        if name.endswith("_ts"):
            return TSDatasetH(handler=handlers[kind], segments=segments, step_len=20)
        return DatasetH(handler=handlers[kind], segments=segments)

    def params_for(name: str, seed: int) -> dict:
        params = {**MODELS[name][2], "seed": seed, "GPU": args.gpu}
        if args.max_epochs:
            params["n_epochs"] = min(params["n_epochs"], args.max_epochs)
        if name.endswith("_ts"):
            params["n_jobs"] = 0  # the YAMLs' 20 DataLoader workers would oversubscribe a small machine
        return params

    def fit(name: str, params: dict, dataset) -> tuple[object, dict, float]:
        module, cls = MODELS[name][:2]
        model = getattr(importlib.import_module(module), cls)(**params)
        evals: dict = {}
        # Some of Qlib's fit methods log to the active recorder: give them one (an mlflow database in --out).
        with R.start(experiment_name="qlib_reference", uri=f"sqlite:///{(out / 'mlflow.db').resolve()}"):
            t0 = time.perf_counter()
            model.fit(dataset, evals_result=evals)
        return model, evals, time.perf_counter() - t0

    def base_weights(name: str, seed: int) -> Path:
        """Qlib's own base LSTM of this seed and budget, trained once and kept in --out."""
        base = BASE_OF[name]
        params = params_for(base, seed)
        path = out / f"base_{base}_e{params['n_epochs']}_seed{seed}.pt"
        if not path.is_file():
            model, _, seconds = fit(base, params, dataset_for(base))
            torch.save(model.lstm_model.state_dict(), path)
            print(f"qlib base {base} seed {seed}: trained in {seconds:.1f} s -> {path.name}", flush=True)
        return path

    def concept_files() -> dict:
        """Qlib's HIST inputs from --concepts (instrument, concept rows): the stock-to-concept matrix and the
        instrument-to-row index. Qlib sends an unknown instrument to row 733, so the matrix has at least 734 rows
        and the spare ones are all zero."""
        if not args.concepts:
            raise SystemExit("hist needs --concepts CSV (instrument, concept), e.g. exported from table concepts")
        rows = pd.read_csv(args.concepts)
        instruments = sorted(rows["instrument"].unique())
        concepts = sorted(rows["concept"].unique())
        matrix = np.zeros((max(len(instruments), 733) + 1, len(concepts)), dtype=np.float32)
        index = {inst: i for i, inst in enumerate(instruments)}
        column = {c: j for j, c in enumerate(concepts)}
        matrix[rows["instrument"].map(index).to_numpy(), rows["concept"].map(column).to_numpy()] = 1.0
        np.save(out / "stock2concept.npy", matrix)
        np.save(out / "stock_index.npy", index, allow_pickle=True)
        return {"stock2concept": str(out / "stock2concept.npy"), "stock_index": str(out / "stock_index.npy")}

    for name in names:
        dataset = dataset_for(name)
        for seed in seeds:
            params = params_for(name, seed)
            if name in BASE_OF:
                params["model_path"] = str(base_weights(name, seed))
            if name == "hist":
                params.update(concept_files())
            model, evals, fit_s = fit(name, params, dataset)
            t0 = time.perf_counter()
            pred = model.predict(dataset) if name.endswith("_ts") else model.predict(dataset, segment="test")
            predict_s = time.perf_counter() - t0
            frame = pred.rename("score").reset_index()
            frame.columns = ["date", "instrument", "score"]
            frame["date"] = pd.to_datetime(frame["date"]).dt.date
            path = out / f"{name}_e{params['n_epochs']}_seed{seed}.parquet"
            frame[["instrument", "date", "score"]].to_parquet(path, index=False)
            valid = [float(v) for v in evals.get("valid", [])]
            module, cls = MODELS[name][:2]
            record = {
                "model": name,
                "seed": seed,
                "implementation": f"qlib {qlib.__version__}",
                "qlib_class": f"{module}.{cls}",
                "params": dict(params),
                "epochs_run": len(valid),
                "best_epoch": max(range(len(valid)), key=valid.__getitem__) if valid else None,
                "train_s": fit_s,
                "predict_s": predict_s,
                "device": str(model.device),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "host": platform.node(),
                "finished_at": dt.datetime.now().isoformat(timespec="seconds"),
                "scores": path.name,
            }
            with open(out / "runs.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
