"""Forward + backward throughput of every network, ours (models/networks.py, models/nets) against Qlib's nn.Module
(dev only).

    /work/qlibenv/bin/python bench/bench_zoo_networks.py               # needs pyqlib for the Qlib column
    /work/qlibenv/bin/python bench/bench_models.py --zoo               # the same, through bench_models

Options: --models lstm,transformer,gats,... (default: all sixteen), --threads 1,2 (torch CPU threads; each count is
a separate table), --devices cpu,cuda (default cpu, plus cuda when available), --rounds N (best of N
interleaved rounds, default 3), --repeats N (passes per round, default 3), --batch N (samples per pass of the
sequence models, default 800).

Both networks get the same weights (Qlib's state_dict loaded into ours) and the same random tensors, each in
its own input layout: Qlib's flat [N, 360] rows (the _ts models: [N, 20, 20] windows, channels-first for
tcn_ts) and ours [N, T, d_feat]. One pass is a forward, MSE against a label and a backward (no optimizer step:
that is the same torch Adam on both sides). Benchmark sizes: LSTM / GRU / ALSTM hidden 64, 2 layers;
Transformer / Localformer d_model 64, nhead 2, 2 layers; TCN 5 x 128 channels, kernel 3 (tcn_ts 5 x 32,
kernel 7); GATs / HIST / IGMTF hidden 64, 2 layers, base LSTM, one trading day of 300 stocks per pass (HIST: 60
concepts; IGMTF: a memory of 50 training days).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from models.nets import GATNet, HISTNet, IGMTFNet, LocalformerNet, TCNNet, TransformerNet  # noqa: E402
from models.networks import ALSTMNet, GRUNet, LSTMNet  # noqa: E402

RNNS = ("lstm", "gru", "alstm", "lstm_ts", "gru_ts", "alstm_ts")
MODELS = (
    *RNNS,
    "transformer",
    "localformer",
    "tcn",
    "transformer_ts",
    "localformer_ts",
    "tcn_ts",
    "gats",
    "gats_ts",
    "hist",
    "igmtf",
)
DAY = 300  # stocks of one trading day (CSI300)
Pass = Callable[[], None]


def qlib_module(name: str):
    return importlib.import_module(f"qlib.contrib.model.pytorch_{name}")


def inputs(name: str, n: int, rng: np.random.Generator, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Qlib's input and ours for ``n`` samples of model ``name``."""
    if name.endswith("_ts"):
        windows = torch.from_numpy(rng.standard_normal((n, 20, 20), dtype=np.float32)).to(device)
        return (windows.transpose(1, 2).contiguous() if name == "tcn_ts" else windows), windows
    rows = torch.from_numpy(rng.standard_normal((n, 360), dtype=np.float32)).to(device)
    return rows, rows.view(n, 6, 60).transpose(1, 2).contiguous()


def networks(name: str) -> tuple[nn.Module | None, nn.Module]:
    """Qlib's module (None without pyqlib) and ours, at the benchmark sizes."""
    base = name.removesuffix("_ts")
    d_feat = 20 if name.endswith("_ts") else 6
    ours: nn.Module
    if base in ("lstm", "gru", "alstm"):
        ours = {"lstm": LSTMNet, "gru": GRUNet, "alstm": ALSTMNet}[base](d_feat, 64, 2, 0.0)
        klass = {"lstm": "LSTMModel", "gru": "GRUModel", "alstm": "ALSTMModel"}[base]
        make = lambda m: getattr(m, klass)(d_feat, 64, 2, 0.0)  # noqa: E731
    elif base in ("transformer", "localformer"):
        ours = (TransformerNet if base == "transformer" else LocalformerNet)(d_feat, 64, 2, 2, 0.0)
        make = lambda m: m.Transformer(d_feat, 64, 2, 2, 0.0)  # noqa: E731
    elif base == "tcn":
        chans, kernel = (128, 3) if d_feat == 6 else (32, 7)
        ours = TCNNet(d_feat, chans, 5, kernel, 0.0)
        make = lambda m: m.TCNModel(d_feat, 1, [chans] * 5, kernel, 0.0)  # noqa: E731
    else:
        klass = {"gats": GATNet, "hist": HISTNet, "igmtf": IGMTFNet}[base]
        ours = klass(d_feat, 64, 2, 0.0, "LSTM")
        qlib_class = {"gats": "GATModel", "hist": "HISTModel", "igmtf": "IGMTFModel"}[base]
        make = lambda m: getattr(m, qlib_class)(d_feat, 64, 2, 0.0, "LSTM")  # noqa: E731
    try:
        theirs = make(qlib_module(name))
    except ImportError:
        return None, ours
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def passes(name: str, batch: int, device: str, rng: np.random.Generator) -> tuple[Pass | None, Pass, int]:
    """One training pass of Qlib's network and of ours on the same data, and the samples per pass."""
    theirs, ours = networks(name)
    ours.to(device).train()
    if theirs is not None:
        theirs.to(device).train()
    n = DAY if name.removesuffix("_ts") in ("gats", "hist", "igmtf") else batch
    q_in, o_in = inputs(name, n, rng, device)
    label = torch.from_numpy(rng.standard_normal(n, dtype=np.float32)).to(device)
    q_args: tuple = (q_in,)
    q_kwargs: dict = {}
    o_args: tuple = (o_in,)
    if name == "hist":
        concepts = torch.from_numpy((rng.random((n, 60)) < 0.05).astype(np.float32)).to(device)
        q_args, o_args = (q_in, concepts), (o_in, concepts)
        if theirs is not None and device == "cpu":
            sys.path.insert(0, str(REPO / "scripts"))
            from parity_zoo import _DeviceOfTensor  # Qlib's HIST calls torch.device(-1) on CPU tensors

            qlib_module("hist").torch = _DeviceOfTensor()
    if name == "igmtf":
        days = 50
        q_train, o_train = inputs(name, days * DAY, rng, device)
        day_of = torch.arange(days * DAY, device=device) // DAY
        o_args = (o_in, ours.train_memory(o_train, day_of))
        if theirs is not None:
            with torch.no_grad():
                per_day = [theirs(q_train[day_of == d], get_hidden=True).cpu() for d in range(days)]
            train_hidden = np.empty(days, dtype=object)  # Qlib's train_hidden: one tensor per day
            for d, h in enumerate(per_day):
                train_hidden[d] = h
            day_mean = torch.cat([h.mean(0, keepdim=True) for h in per_day])
            q_kwargs = {"train_hidden": train_hidden, "train_hidden_day": day_mean}

    def one(net: nn.Module, args: tuple, kwargs: dict) -> Pass:
        def run() -> None:
            net.zero_grad(set_to_none=True)
            out = net(*args, **kwargs).reshape(-1)
            ((out - label) ** 2).mean().backward()

        return run

    return (one(theirs, q_args, q_kwargs) if theirs is not None else None), one(ours, o_args, {}), n


def timed(run: Pass, repeats: int, device: str) -> float:
    """Seconds per pass, over ``repeats`` passes."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def bench(models: list[str], threads: list[int], devices: list[str], rounds: int, repeats: int, batch: int) -> None:
    for device in devices:
        for count in threads if device == "cpu" else [torch.get_num_threads()]:
            torch.set_num_threads(count)
            print(
                f"\ndevice {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
                f"load {os.getloadavg()[0]:.1f}; forward + backward samples/s, best of {rounds} x {repeats} passes"
            )
            print(f"{'model':<15} {'samples':>7} {'ours':>10} {'qlib':>10} {'ours/qlib':>9}")
            for name in models:
                rng = np.random.default_rng(0)
                theirs, ours, n = passes(name, batch, device, rng)
                ours()  # warm-up: first-call allocations and kernel selection
                if theirs is not None:
                    theirs()
                best_ours = best_theirs = float("inf")
                for _ in range(rounds):  # interleaved: the load of a shared machine moves
                    best_ours = min(best_ours, timed(ours, repeats, device))
                    if theirs is not None:
                        best_theirs = min(best_theirs, timed(theirs, repeats, device))
                q_text = f"{n / best_theirs:10.0f}" if theirs else f"{'-':>10}"
                ratio = f"{best_theirs / best_ours:9.2f}" if theirs else f"{'-':>9}"
                print(f"{name:<15} {n:>7} {n / best_ours:10.0f} {q_text} {ratio}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--devices", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=800)
    args = parser.parse_args(argv)
    try:
        import logging

        from qlib.config import C

        C.logging_level = logging.WARNING
    except ImportError:
        print("pyqlib is not installed: ours only")
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    threads = [int(t) for t in args.threads.split(",")]
    bench(args.models.split(","), threads, devices, args.rounds, args.repeats, args.batch)
    print(f"load at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
