"""Training throughput of the six benchmark models, ours against Qlib's own training loop (dev only).

    .venv/bin/python bench/bench_models.py                 # ours only (pyqlib is not in .venv)
    /work/qlibenv/bin/python bench/bench_models.py         # ours and Qlib's, with the ratio

Options: --steps N (training batches timed per round, default 2), --rounds N (default 3; the best round is
reported, ours and Qlib's interleaved), --batch-size (800), --models lstm,gru_ts,..., --devices cpu,cuda
(default: cpu, plus cuda when available), --threads N (torch CPU threads, default 1: on a shared 2-core machine
one thread is several times faster than two),
--qlib-workers N (DataLoader workers of Qlib's TS models; the YAMLs use 20, default 0 here).
--zoo [options]: instead, forward + backward samples/s of the Transformer / Localformer / TCN / GATs / HIST /
IGMTF networks against Qlib's modules on the same tensors (bench/bench_zoo_networks.py; its options follow).

Random data with the benchmark shapes: flat rows of 360 values (d_feat 6 x 60 days) for lstm / gru / alstm,
20-day windows of 20 features for the *_ts models; hidden 64, 2 layers, batch 800.

* ours: ``models.training.train_model`` for one epoch of ``steps`` full batches (``eval_train`` off); the
  figure is its ``samples_per_s``, which times the training passes only (gather, forward, backward, clip, Adam).
* Qlib: the wrapper class of ``qlib.contrib.model.pytorch_{lstm,gru,alstm}[_ts]`` and its own ``train_epoch``:
  pandas frames of ``steps * batch`` rows for the non-TS models (``.values``, shuffled numpy index, host to
  device copy per batch), and a DataLoader over a ``TSDataSampler`` (ffill+bfill) for the TS models. The
  whole ``train_epoch`` call is timed.

Each side runs a one-batch warm-up first. The machine's load average is printed: on a shared CPU the figures move.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.config import get_model_config, model_config_names  # noqa: E402
from models.training import train_model  # noqa: E402
from processing.samples import SampleSet  # noqa: E402

N_INST = 200  # instruments per day of the sequence data

# model name -> (Qlib module, wrapper class)
QLIB_CLASSES = {
    "lstm": ("qlib.contrib.model.pytorch_lstm", "LSTM"),
    "gru": ("qlib.contrib.model.pytorch_gru", "GRU"),
    "alstm": ("qlib.contrib.model.pytorch_alstm", "ALSTM"),
    "lstm_ts": ("qlib.contrib.model.pytorch_lstm_ts", "LSTM"),
    "gru_ts": ("qlib.contrib.model.pytorch_gru_ts", "GRU"),
    "alstm_ts": ("qlib.contrib.model.pytorch_alstm_ts", "ALSTM"),
}


# -- data ---------------------------------------------------------------------------------------------------
def flat_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((n, 360), dtype=np.float32), rng.standard_normal(n, dtype=np.float32)


def sequence_data(n: int, step_len: int, d_feat: int, rng: np.random.Generator):
    """Rows of N_INST instruments x (history + days), instrument-major, and windows of the last day(s)."""
    days = -(-n // N_INST)
    total_days = days + step_len - 1
    rows = rng.standard_normal((N_INST * total_days, d_feat), dtype=np.float32)
    labels = rng.standard_normal(N_INST * total_days, dtype=np.float32)
    inst = np.repeat(np.arange(N_INST), days)
    day = np.tile(np.arange(step_len - 1, total_days), N_INST)
    windows = (inst * total_days + day)[:, None] + np.arange(-step_len + 1, 1)[None, :]
    return rows, labels, windows[:n], days, total_days


def our_sets(name: str, n: int, n_valid: int, rng: np.random.Generator) -> tuple[SampleSet, SampleSet]:
    config = get_model_config(name)

    def one(count: int) -> SampleSet:
        stamp = np.full(count, np.datetime64("2020-01-01"))
        names = np.full(count, "SH600000")
        if config.layout == "flat":
            rows, labels = flat_data(count, rng)
            return SampleSet(rows, np.arange(count)[:, None], labels, stamp, names, "flat", 6)
        rows, labels, windows, _, _ = sequence_data(count, config.step_len, config.d_feat, rng)
        return SampleSet(rows, windows, labels[windows[:, -1]], stamp, names, "sequence", config.d_feat)

    return one(n), one(n_valid)


def qlib_flat_frames(n: int, rng: np.random.Generator):
    import pandas as pd

    x, y = flat_data(n, rng)
    index = pd.MultiIndex.from_arrays(
        [
            np.repeat(pd.date_range("2010-01-01", periods=-(-n // 300)), 300)[:n],
            np.tile(np.arange(300), -(-n // 300))[:n],
        ],
        names=["datetime", "instrument"],
    )
    return pd.DataFrame(x, index=index), pd.DataFrame(y, index=index, columns=["LABEL0"])


def qlib_ts_loader(n: int, batch: int, workers: int, rng: np.random.Generator):
    import pandas as pd
    from qlib.data.dataset import TSDataSampler
    from qlib.model.utils import ConcatDataset
    from torch.utils.data import DataLoader

    rows, labels, _, days, total_days = sequence_data(n, 20, 20, rng)
    dates = pd.date_range("2010-01-01", periods=total_days)
    index = pd.MultiIndex.from_arrays(
        [np.tile(dates, N_INST), np.repeat([f"SH{600000 + i}" for i in range(N_INST)], total_days)],
        names=["datetime", "instrument"],
    )
    frame = pd.DataFrame(np.column_stack([rows, labels]), index=index).sort_index()  # (datetime, instrument)
    sampler = TSDataSampler(frame, start=dates[19], end=dates[-1], step_len=20, fillna_type="ffill+bfill")
    dataset = ConcatDataset(sampler, np.ones(len(sampler)))
    return DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)


# -- timing -------------------------------------------------------------------------------------------------
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Ours:
    """``train_model`` for one epoch of ``steps`` batches; its samples_per_s times the training passes only."""

    def __init__(self, name: str, steps: int, batch: int, device: str, rng: np.random.Generator):
        self.config = get_model_config(name, n_epochs=1, eval_train=False, seed=0, batch_size=batch)
        self.device = device
        self.warm = our_sets(name, batch, batch, rng)
        self.data = our_sets(name, batch * steps, batch, rng)
        train_model(self.config, *self.warm, device=device)

    def run(self) -> float:
        return train_model(self.config, *self.data, device=self.device).samples_per_s


class Qlibs:
    """Qlib's wrapper object and its own ``train_epoch`` over ``steps`` batches, timed as a whole."""

    def __init__(self, name: str, steps: int, batch: int, device: str, workers: int, rng: np.random.Generator):
        module, cls = QLIB_CLASSES[name]
        config = get_model_config(name)
        kwargs = {
            "d_feat": config.d_feat,
            "hidden_size": config.hidden_size,
            "num_layers": config.num_layers,
            "dropout": config.dropout,
            "lr": config.lr,
            "batch_size": batch,
            "metric": "loss",
            "loss": "mse",
            "GPU": 0 if device.startswith("cuda") else -1,
            "seed": 0,
        }
        if name.endswith("_ts"):
            kwargs["n_jobs"] = workers
        self.model = getattr(importlib.import_module(module), cls)(**kwargs)
        if name.endswith("_ts"):
            warm = (qlib_ts_loader(batch, batch, workers, rng),)
            self.args = (qlib_ts_loader(batch * steps, batch, workers, rng),)
        else:
            warm = qlib_flat_frames(batch, rng)
            self.args = qlib_flat_frames(batch * steps, rng)
        self.samples = batch * steps
        self.device = device
        self.model.train_epoch(*warm)

    def run(self) -> float:
        sync(self.device)
        t0 = time.perf_counter()
        self.model.train_epoch(*self.args)
        sync(self.device)
        return self.samples / (time.perf_counter() - t0)


def main() -> None:
    if "--zoo" in sys.argv[1:]:
        sys.path.insert(0, str(REPO / "bench"))
        import bench_zoo_networks

        bench_zoo_networks.main([a for a in sys.argv[1:] if a != "--zoo"])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=800)
    parser.add_argument("--models", default=",".join(model_config_names()))
    parser.add_argument("--devices", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--qlib-workers", type=int, default=0)
    parser.add_argument("--no-qlib", action="store_true")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        if args.no_qlib:
            raise ImportError
        import logging

        from qlib.config import C

        C.logging_level = logging.WARNING  # the model wrappers log every setting at INFO
        have_qlib = True
    except ImportError:
        have_qlib = False

    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu cores {os.cpu_count()}, "
        f"load {os.getloadavg()[0]:.1f}, batch {args.batch_size}, {args.steps} timed steps per model"
    )
    print(f"{'model':<9} {'device':<6} {'ours (samples/s)':>17} {'qlib (samples/s)':>17} {'ours/qlib':>9}")
    for device in devices:
        for name in args.models.split(","):
            rng = np.random.default_rng(0)
            ours = Ours(name, args.steps, args.batch_size, device, rng)
            theirs = Qlibs(name, args.steps, args.batch_size, device, args.qlib_workers, rng) if have_qlib else None
            best_ours = best_theirs = 0.0
            for _ in range(args.rounds):  # interleaved, best of the rounds: the load of a shared machine moves
                best_ours = max(best_ours, ours.run())
                if theirs is not None:
                    best_theirs = max(best_theirs, theirs.run())
            ratio = f"{best_ours / best_theirs:9.2f}" if theirs else f"{'-':>9}"
            qtext = f"{best_theirs:17.0f}" if theirs else f"{'(no pyqlib)':>17}"
            print(f"{name:<9} {device:<6} {best_ours:17.0f} {qtext} {ratio}", flush=True)
    print(f"load at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
