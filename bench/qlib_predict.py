"""Qlib's own ``model.predict`` over a test segment, timed: the figure ``bench_scoring.py`` compares with (dev only).

Run with a Python that has pyqlib 0.9.x (never a dependency of this project):

    /path/to/qlib-python bench/qlib_predict.py --data ../shared/data/qlib_cn --models lstm,gru,alstm --threads 2,1

It builds Qlib's ``Alpha360`` handler over the test segment with the benchmark YAMLs' infer processors
(RobustZScoreNorm with clipping, Fillna; fitted on the segment's first year: the fitted values do not change what
predict costs), then for each model builds Qlib's class with the benchmark hyperparameters (batch 800), marks it
fitted (untrained weights: the forward's cost depends on the shapes, not the values) and times
``model.predict(dataset)``, which slices the processed test frame and runs the network batch by batch, as
``SignalRecord`` does. The handler's own build is not timed: it is Qlib's feature computation, not scoring.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qlib_reference import MODELS, build_handler  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/qlib_cn")
    parser.add_argument("--market", default="csi300")
    parser.add_argument("--start", default="2019-01-02")
    parser.add_argument("--end", default="2026-05-08")
    parser.add_argument("--models", default="lstm,gru,alstm")
    parser.add_argument("--threads", default="2,1", help="torch thread counts to time predict with")
    parser.add_argument("--kernels", type=int, default=1, help="Qlib worker processes for the features")
    args = parser.parse_args()

    import qlib
    import torch
    from qlib.data.dataset import DatasetH

    qlib.init(provider_uri=str(Path(args.data).resolve()), region="cn", kernels=args.kernels)
    first_year_end = f"{int(args.start[:4])}-12-31"
    segments = {
        "train": (args.start, first_year_end),
        "valid": (args.start, first_year_end),
        "test": (args.start, args.end),
    }
    t0 = time.perf_counter()
    handler = build_handler("alpha360", segments, args.market)
    print(f"qlib Alpha360 handler {args.start}..{args.end}: {time.perf_counter() - t0:.1f} s (not timed below)")
    dataset = DatasetH(handler=handler, segments=segments)
    print(f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}; pyqlib {qlib.__version__}", flush=True)
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        module, cls, params, kind = MODELS[name]
        if kind != "alpha360" or name.endswith("_ts"):
            raise SystemExit(f"--models: {name} is not a flat Alpha360 model")
        for threads in [int(x) for x in args.threads.split(",")]:
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            model = getattr(importlib.import_module(module), cls)(**{**params, "seed": 0, "GPU": 0})
            model.fitted = True
            t = time.perf_counter()
            scores = model.predict(dataset)
            seconds = time.perf_counter() - t
            print(
                f"{name}: Qlib's predict {seconds:.1f} s for {len(scores)} samples ({threads} torch threads)",
                flush=True,
            )
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
