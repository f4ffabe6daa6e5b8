"""Training step and scoring time with PyTorch's CPU allocator on 4 KB pages against transparent huge pages
(dev only).

    .venv/bin/python bench/bench_allocator.py [--models lstm,gru,...] [--threads 1] [--steps 3]

``models/__init__.py`` sets ``THP_MEM_ALLOC_ENABLE=1`` (PyTorch then backs blocks of 2 MB and more with huge
pages, where the kernel's THP mode is "madvise" or "always"). PyTorch reads the option once per process, so each
measurement runs in its own process, with the option 0 and then 1: one training step of the model's own batch
(random inputs of the benchmark shapes, forward, masked MSE, backward, clipping, Adam), best of ``--steps`` after
a warm-up, and for the flat RNNs the scoring forward of batches of 256 (``models.scoring.CPU_THREAD_BATCH``).
The daily graph models (GATs, HIST, IGMTF) need a day's cross-section and extras and are left out here; the
process's minor page faults are printed beside the times.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = "lstm,gru,alstm,transformer,localformer,tcn,lstm_ts,transformer_ts,tcn_ts"

CHILD = r"""
import os, sys, time
sys.path.insert(0, {repo!r})
import torch
from models.config import get_model_config
from models.metrics import masked_mse
from models.networks import build_network

name, steps, threads = {name!r}, {steps}, {threads}
torch.set_num_threads(threads)
config = get_model_config(name)
torch.manual_seed(0)
net = build_network(config).train()
n = config.batch_size
shape = (n, config.step_len, config.d_feat)
x, y = torch.randn(*shape), torch.randn(n)
opt = torch.optim.Adam(net.parameters(), lr=1e-4)

def step():
    loss = masked_mse(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_value_(net.parameters(), 3.0)
    opt.step()

def best(fn):
    fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)

train = best(step)
score = float("nan")
if name in ("lstm", "gru", "alstm"):
    net.eval()
    xs = torch.randn(8192, 60, config.d_feat)
    def forward():
        with torch.inference_mode():
            for i in range(0, len(xs), 256):
                net(xs[i : i + 256])
    score = best(forward) / len(xs) * 1e6
faults = int(open("/proc/self/stat").read().split()[9])
print(n, train, score, faults)
"""


def run(name: str, steps: int, threads: int, thp: str) -> tuple[int, float, float, int]:
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": thp}
    code = CHILD.format(repo=str(REPO), name=name, steps=steps, threads=threads)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    batch, train, score, faults = out.stdout.split()
    return int(batch), float(train), float(score), int(faults)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    print(f"THP mode: {mode.read_text().strip() if mode.is_file() else 'unknown'}; torch threads {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'model':<15}{'batch':>6}{'step 4K (s)':>13}{'step THP (s)':>14}{'speed-up':>10}"
          f"{'score 4K':>10}{'score THP':>11}  (us/sample)  page faults 4K / THP")  # fmt: skip
    for name in args.models.split(","):
        batch, plain, score_plain, faults_plain = run(name, args.steps, args.threads, "0")
        _, huge, score_huge, faults_huge = run(name, args.steps, args.threads, "1")
        faults = f"{faults_plain:>12,} / {faults_huge:,}"
        print(f"{name:<15}{batch:>6}{plain:>13.3f}{huge:>14.3f}{plain / huge:>10.2f}"
              f"{score_plain:>10.1f}{score_huge:>11.1f}  {faults}", flush=True)  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
