"""Scoring time of a test segment per phase, for an Alpha360 model of Qlib's size (dev only).

    .venv/bin/python bench/bench_scoring.py --warehouse /work/csi300/warehouse.duckdb
    .venv/bin/python bench/bench_scoring.py --warehouse ... --model gru --threads 1,2 --batch-size 800

The phases are the ones ``workflow.scoring.score_window`` runs, timed one by one:

* read: the test segment's Alpha360 features (plus the history before it) and labels from DuckDB;
* process: the fitted handler's processors (the warehouse's stored ``alpha360_rnn`` state);
* build: the flat SampleSet of the test segment; mask: the bad-input mask;
* forward: ``models.scoring.predict`` (device copy, batches, network) per torch thread count;
* write: the scores into a scratch DuckDB file's ``predictions`` table (the warehouse is opened read-only).

The network is Qlib's size (hidden 64, 2 layers, d_feat 6 x 60 steps) with PyTorch's default initialisation:
the forward cost depends on the shape, not the weights. Qlib's figures beside it (``model.predict``, batch 800,
``QLIB_PREDICT_S``) come from ``bench/qlib_predict.py`` on this machine; they time the network over a frame Qlib's
handler already holds in memory, so compare them with the forward alone as well as with the total (which also
reads and processes the segment). The machine's load average is printed: on a shared CPU the figures move.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402

from models.batches import bad_input_mask  # noqa: E402
from models.config import get_model_config  # noqa: E402
from models.networks import build_network  # noqa: E402
from models.scoring import predict  # noqa: E402
from processing.config import get_handler_config  # noqa: E402
from processing.dataset import build_flat_samples  # noqa: E402
from warehouse.store import Warehouse  # noqa: E402
from workflow.handlers import load_handler  # noqa: E402
from workflow.panels import history_start, read_membership, read_panel  # noqa: E402

# Qlib's own model.predict over the same 497,050 samples, measured with bench/qlib_predict.py on this machine
# (2026-12-06 14:58-15:03, idle, pyqlib 0.9.7): seconds at (1, 2) torch threads.
QLIB_PREDICT_S = {"lstm": (18.8, 10.5), "gru": (40.6, 24.0), "alstm": (56.9, 38.1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", default="/work/csi300/warehouse.duckdb")
    parser.add_argument("--start", default="2019-01-02")
    parser.add_argument("--end", default="2026-05-08")
    parser.add_argument("--model", default="lstm", choices=["lstm", "gru", "alstm"])
    parser.add_argument("--threads", default="1,2", help="torch CPU thread counts to time the forward with")
    parser.add_argument("--batch-size", type=int, default=800)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; torch {torch.__version__}", flush=True)

    config = get_model_config(args.model)
    source = Warehouse(args.warehouse)
    phases: dict[str, float] = {}
    t = time.perf_counter()
    _, _, fitted = load_handler(source, config.handler)
    feature_set = get_handler_config(config.handler).feature_set
    features, labels = read_panel(source, feature_set, history_start(source, start, 0), end)
    membership = read_membership(source)
    phases["read"] = time.perf_counter() - t
    t = time.perf_counter()
    data = fitted.process(features, labels, membership=membership)
    phases["process"] = time.perf_counter() - t
    del features, labels
    t = time.perf_counter()
    samples = build_flat_samples(data.infer, start, end, d_feat=config.d_feat, raw_labels=data.raw_labels)
    phases["build"] = time.perf_counter() - t
    t = time.perf_counter()
    bad = bad_input_mask(samples)
    phases["mask"] = time.perf_counter() - t
    print(f"{samples.n_samples} samples {start}..{end}, {int(bad.sum())} with bad input", flush=True)

    torch.manual_seed(0)
    net = build_network(config)
    forward: dict[int, float] = {}
    scores = None
    for threads in [int(x) for x in args.threads.split(",")]:
        torch.set_num_threads(threads)
        t = time.perf_counter()
        scores = predict(net, samples, device=args.device, batch_size=args.batch_size, log=print, name=args.model)
        forward[threads] = time.perf_counter() - t

    frame = pl.DataFrame(
        {
            "model": args.model,
            "model_version": "bench",
            "instrument": samples.instruments.astype(str),
            "date": samples.dates.astype("datetime64[D]"),
            "score": np.asarray(scores, dtype=np.float64),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Warehouse(Path(tmp) / "scratch.duckdb")
        scratch.ensure_schema()
        t = time.perf_counter()
        scratch.replace(
            "predictions", frame, date_range=(start, end), where={"model": args.model, "model_version": "bench"}
        )
        phases["write"] = time.perf_counter() - t

    other = sum(phases.values())
    print(f"\n{args.model} (hidden {config.hidden_size}, {config.num_layers} layers), batch {args.batch_size}")
    for name, seconds in phases.items():
        print(f"  {name:<8} {seconds:7.1f} s")
    for threads, seconds in forward.items():
        print(f"  forward  {seconds:7.1f} s  ({threads} torch thread{'s' if threads > 1 else ''})")
    qlib = QLIB_PREDICT_S.get(args.model)
    for threads, seconds in forward.items():
        line = f"  total    {other + seconds:7.1f} s  with {threads} thread(s)"
        if qlib and threads in (1, 2):
            theirs = qlib[threads - 1]
            line += f"; Qlib's model.predict {theirs:.1f} s at {threads} thread(s): {theirs / (other + seconds):.2f}x"
            line += f" ({theirs / seconds:.2f}x against the forward alone)"
        print(line)
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
