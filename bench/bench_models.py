"""Training throughput of every model configuration, ours against Qlib's own training loop (dev only).

    .venv/bin/python bench/bench_models.py                 # ours only (pyqlib is not in .venv)
    /work/qlibenv/bin/python bench/bench_models.py         # ours and Qlib's, with the ratio

Options: --steps N (training batches, or days for the daily models, timed per round, default 2), --rounds N
(default 3; the best round is reported, ours and Qlib's interleaved), --batch-size (default: each model's own),
--models lstm,gats,... (default: all sixteen), --devices cpu,cuda (default: cpu, plus cuda when available),
--threads 1,2 (torch CPU threads; one table per count, default 1,2), --qlib-workers N (DataLoader workers of
Qlib's TS models; the YAMLs use 20, default 0 here).
--zoo [options]: instead, forward + backward samples/s of every network against Qlib's module on the same tensors
(bench/bench_zoo_networks.py; its options follow).

Random data with the benchmark shapes: days of 300 stocks; flat rows of 360 values (d_feat 6 x 60 days) for the
Alpha360 models, 20-day windows of 20 features for the *_ts models; each model's benchmark configuration
(``models.config``), its own batch size and optimizer (the YAMLs' settings; Qlib's wrapper built with them).

* ours: ``models.training.train_model`` for one epoch of ``steps`` full batches (``eval_train`` off), or
  ``steps`` trading days for GATs / HIST / IGMTF; the figure is its ``samples_per_s``, which times the training
  passes only (gather, forward, backward, clip, optimizer; IGMTF's memory refresh included).
* Qlib: the wrapper class of ``qlib.contrib.model.pytorch_<name>[_ts]`` and its own ``train_epoch``: pandas frames
  of the same rows for the non-TS models (``.values``, shuffled numpy index or ``get_daily_inter``, host to
  device copy per batch; HIST with a stock-to-concept file and index, IGMTF with its ``get_train_hidden`` first),
  and a DataLoader over a ``TSDataSampler`` (ffill+bfill) for the TS models (``DailyBatchSampler`` for GATs_ts).
  The whole call is timed.

Each side runs a one-batch warm-up first. The machine's load average is printed: on a shared CPU the figures move.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.config import ModelConfig, get_model_config, model_config_names  # noqa: E402
from models.training import train_model  # noqa: E402
from processing.concepts import Concepts  # noqa: E402
from processing.samples import SampleSet  # noqa: E402

N_INST = 300  # stocks per day (CSI300)
QLIB_STOCKS = 734  # rows of Qlib's stock-to-concept matrix (HIST maps unknown stocks to row 733)

# model name -> (Qlib module, wrapper class) of the six RNNs; the zoo's come from scripts/parity_zoo.py
QLIB_CLASSES = {
    "lstm": ("qlib.contrib.model.pytorch_lstm", "LSTM"),
    "gru": ("qlib.contrib.model.pytorch_gru", "GRU"),
    "alstm": ("qlib.contrib.model.pytorch_alstm", "ALSTM"),
    "lstm_ts": ("qlib.contrib.model.pytorch_lstm_ts", "LSTM"),
    "gru_ts": ("qlib.contrib.model.pytorch_gru_ts", "GRU"),
    "alstm_ts": ("qlib.contrib.model.pytorch_alstm_ts", "ALSTM"),
}


# -- data ---------------------------------------------------------------------------------------------------
class Panel:
    """``days`` trading days of N_INST stocks, as our SampleSet and as Qlib's frames / TSDataSampler."""

    def __init__(self, config: ModelConfig, days: int, rng: np.random.Generator):
        self.config = config
        self.days = days
        self.dates = np.datetime64("2010-01-04") + np.arange(days + config.step_len)
        self.names = np.array([f"SH{600000 + i}" for i in range(N_INST)])
        if config.layout == "flat":
            n = days * N_INST
            self.rows = rng.standard_normal((n, 360), dtype=np.float32)
            self.labels = rng.standard_normal(n, dtype=np.float32)
            # Qlib's IGMTF packs its per-day memory with np.asarray(dtype=object), which breaks the tensors apart
            # when every day has as many stocks: its first day here has one stock less
            self.keep = np.ones(n, dtype=bool)
            if config.model == "igmtf":
                self.keep[N_INST - 1] = False
        else:  # instrument-major rows over history + days, windows of the last `days` days
            total = days + config.step_len - 1
            self.rows = rng.standard_normal((N_INST * total, config.d_feat), dtype=np.float32)
            self.labels = rng.standard_normal(N_INST * total, dtype=np.float32)
            self.total = total

    def ours(self) -> SampleSet:
        c = self.config
        if c.layout == "flat":
            n = len(self.rows)
            dates, names = np.repeat(self.dates[: self.days], N_INST), np.tile(self.names, self.days)
            flat = SampleSet(self.rows, np.arange(n)[:, None], self.labels, dates, names, "flat", c.d_feat)
            return flat.subset(self.keep)
        inst = np.repeat(np.arange(N_INST), self.days)
        day = np.tile(np.arange(c.step_len - 1, self.total), N_INST)
        windows = (inst * self.total + day)[:, None] + np.arange(-c.step_len + 1, 1)[None, :]
        last = windows[:, -1]
        return SampleSet(self.rows, windows, self.labels[last], self.dates[day], self.names[inst], "sequence", c.d_feat)

    def frames(self):
        import pandas as pd

        index = pd.MultiIndex.from_arrays(
            [np.repeat(pd.DatetimeIndex(self.dates[: self.days]), N_INST), np.tile(self.names, self.days)],
            names=["datetime", "instrument"],
        )
        x = pd.DataFrame(self.rows, index=index)[self.keep]
        return x, pd.DataFrame(self.labels, index=index, columns=["LABEL0"])[self.keep]

    def sampler(self):
        import pandas as pd
        from qlib.data.dataset import TSDataSampler

        dates = pd.DatetimeIndex(self.dates[: self.total])
        index = pd.MultiIndex.from_arrays(
            [np.tile(dates, N_INST), np.repeat(self.names, self.total)], names=["datetime", "instrument"]
        )
        frame = pd.DataFrame(np.column_stack([self.rows, self.labels]), index=index).sort_index()
        step = self.config.step_len
        return TSDataSampler(frame, start=dates[step - 1], end=dates[-1], step_len=step, fillna_type="ffill+bfill")


# -- timing -------------------------------------------------------------------------------------------------
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def config_for(name: str, batch: int | None) -> ModelConfig:
    return get_model_config(name, **({"batch_size": batch} if batch else {}))


def panel_days(config: ModelConfig, steps: int, days: int) -> int:
    """Days of data for ``steps`` batches (the daily models: ``days`` days, one per step)."""
    return days if config.daily else -(-steps * config.batch_size // N_INST)


def stand_in_concepts(rng: np.random.Generator) -> Concepts:
    names = np.array([f"SH{600000 + i}" for i in range(N_INST)])
    matrix = (rng.random((N_INST, 60)) < 0.05).astype(np.float32)
    return Concepts(names, matrix, tuple(f"c{i}" for i in range(60)), "bench")


class Ours:
    """``train_model`` for one epoch; its samples_per_s times the training passes only."""

    def __init__(self, config: ModelConfig, steps: int, days: int, device: str, rng: np.random.Generator):
        cap = 0 if config.daily else steps
        self.config = config.replace(n_epochs=1, eval_train=False, seed=0, max_batches_per_epoch=cap)
        self.device = device
        self.concepts = stand_in_concepts(rng)
        valid = Panel(config, 1, rng).ours()
        self.warm = (Panel(config, panel_days(config, 1, 10), rng).ours(), valid)
        self.data = (Panel(config, panel_days(config, steps, days), rng).ours(), valid)
        self.run_on(self.warm)

    def run_on(self, data: tuple[SampleSet, SampleSet]) -> float:
        return train_model(self.config, *data, device=self.device, concepts=self.concepts).samples_per_s

    def run(self) -> float:
        return self.run_on(self.data)


class Qlibs:
    """Qlib's wrapper object (benchmark settings) and its own ``train_epoch`` over the same rows, timed whole."""

    def __init__(
        self, name: str, config: ModelConfig, steps: int, days: int, device: str, workers: int, rng: np.random.Generator
    ):
        gpu = 0 if device.startswith("cuda") else -1
        self.name, self.config, self.device, self.workers = name, config, device, workers
        if name in QLIB_CLASSES:
            module, cls = QLIB_CLASSES[name]
            kwargs = {
                "d_feat": config.d_feat,
                "hidden_size": config.hidden_size,
                "num_layers": config.num_layers,
                "dropout": config.dropout,
                "lr": config.lr,
                "batch_size": config.batch_size,
                "metric": "loss",
                "loss": "mse",
                "GPU": gpu,
                "seed": 0,
            }
            if name.endswith("_ts"):
                kwargs["n_jobs"] = workers
            self.model = getattr(importlib.import_module(module), cls)(**kwargs)
        else:
            import parity_zoo

            self.model = parity_zoo.make_wrapper(name, config, gpu=gpu)[0]
            self.model.batch_size = config.batch_size
        if name == "hist":
            self.concepts = tempfile.NamedTemporaryFile(suffix=".npy", delete=False)  # noqa: SIM115 - read per epoch
            np.save(self.concepts.name, (rng.random((QLIB_STOCKS, 60)) < 0.05).astype(np.float32))
            self.model.stock2concept = self.concepts.name
        warm = self.arguments(Panel(config, panel_days(config, 1, 10), rng))  # IGMTF reads 10 days
        self.args = self.arguments(Panel(config, panel_days(config, steps, days), rng))
        self.epoch(warm)

    def arguments(self, panel: Panel) -> tuple:
        from torch.utils.data import DataLoader

        c = self.config
        if c.layout == "flat":
            x, y = panel.frames()
            n = len(x)
            extra: tuple = ()
            if self.name == "hist":
                # train_epoch reads .values and writes into it; a pandas Series' values are read-only under
                # copy-on-write, so a plain holder of the row numbers stands in for Qlib's stock_index column
                extra = (types.SimpleNamespace(values=np.tile(np.arange(N_INST), panel.days)),)
            samples = n if c.daily else (n // c.batch_size) * c.batch_size
            return (x, y, *extra), samples
        sampler = panel.sampler()
        n = len(sampler)
        if self.name == "gats_ts":
            from qlib.contrib.model.pytorch_gats_ts import DailyBatchSampler

            loader = DataLoader(sampler, sampler=DailyBatchSampler(sampler), num_workers=self.workers, drop_last=True)
            return (loader,), n
        dataset = sampler
        if self.name in QLIB_CLASSES:  # the RNN _ts wrappers read (data, weight) pairs
            from qlib.model.utils import ConcatDataset

            dataset = ConcatDataset(sampler, np.ones(n))
        loader = DataLoader(dataset, batch_size=c.batch_size, shuffle=True, num_workers=self.workers, drop_last=True)
        return (loader,), (n // c.batch_size) * c.batch_size

    def epoch(self, arguments: tuple) -> None:
        args, _ = arguments
        if self.name == "igmtf":  # Qlib's fit recomputes the memory before every train_epoch
            self.model.train_epoch(*args, *self.model.get_train_hidden(args[0]))
        else:
            self.model.train_epoch(*args)

    def run(self) -> float:
        sync(self.device)
        t0 = time.perf_counter()
        self.epoch(self.args)
        sync(self.device)
        return self.args[1] / (time.perf_counter() - t0)


def main() -> None:
    if "--zoo" in sys.argv[1:]:
        sys.path.insert(0, str(REPO / "bench"))
        import bench_zoo_networks

        bench_zoo_networks.main([a for a in sys.argv[1:] if a != "--zoo"])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--days", type=int, default=20, help="trading days per epoch of the daily models")
    parser.add_argument("--batch-size", type=int, default=0, help="0: each model's own")
    parser.add_argument("--models", default=",".join(model_config_names()))
    parser.add_argument("--devices", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--qlib-workers", type=int, default=0)
    parser.add_argument("--no-qlib", action="store_true")
    args = parser.parse_args()

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

    for device in devices:
        for threads in [int(t) for t in args.threads.split(",")] if device == "cpu" else [torch.get_num_threads()]:
            torch.set_num_threads(threads)
            print(
                f"\ntorch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, cpu cores "
                f"{os.cpu_count()}, load {os.getloadavg()[0]:.1f}; {args.steps} timed batches per model "
                f"({args.days} days for the daily models)"
            )
            print(f"{'model':<15} {'batch':>6} {'ours (samples/s)':>17} {'qlib (samples/s)':>17} {'ours/qlib':>9}")
            for name in args.models.split(","):
                rng = np.random.default_rng(0)
                config = config_for(name, args.batch_size)
                ours = Ours(config, args.steps, args.days, device, rng)
                theirs = None
                if have_qlib:
                    theirs = Qlibs(name, config, args.steps, args.days, device, args.qlib_workers, rng)
                best_ours = best_theirs = 0.0
                for _ in range(args.rounds):  # interleaved, best of the rounds: the load of a shared machine moves
                    best_ours = max(best_ours, ours.run())
                    if theirs is not None:
                        best_theirs = max(best_theirs, theirs.run())
                ratio = f"{best_ours / best_theirs:9.2f}" if theirs else f"{'-':>9}"
                qtext = f"{best_theirs:17.0f}" if theirs else f"{'(no pyqlib)':>17}"
                batch = "day" if config.daily else str(config.batch_size)
                print(f"{name:<15} {batch:>6} {best_ours:17.0f} {qtext} {ratio}", flush=True)
    print(f"load at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
