"""Scoring a SampleSet with a trained network.

Most networks score fixed-size batches of samples. The cross-sectional ones (GATs, HIST, IGMTF) score one
trading day's cross-section at a time, as Qlib's ``predict`` does: HIST with the day's stock-to-concept rows,
IGMTF with its memory recomputed from the training segment's samples with the final weights.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from models.batches import DeviceSamples, bad_input_mask
from models.config import ModelConfig
from models.daily import DayIndex
from models.feeds import Context, Feed, make_context, refresh_memory
from models.nets import GATNet, HISTNet, IGMTFNet
from models.networks import ALSTMNet, RecurrentNet
from models.runtime import Log, emit, resolve_device
from processing.concepts import Concepts
from processing.samples import SampleSet

# Seconds between two progress lines of a long scoring run.
PROGRESS_EVERY_S = 10.0
# On a CPU, batches of at most this many samples, one per torch thread, each thread running its own batch on one
# core: the products of a 64-wide network are small to split across cores (CSI300's 497 k test samples, 2 threads:
# the LSTM forward 10.0 s side by side, as fast as oneDNN splitting batches of 800 across both).
CPU_THREAD_BATCH = 256
# The GRU networks score through ``models.nets.cpu_inference``, a Python loop over time steps: larger batches spread its
# per-step overhead (2 threads: 28 us a sample with batches of 512, 22 us with 2048, PyTorch's own GRU 40 us).
CPU_THREAD_BATCH_GRU = 2048
CROSS_SECTIONAL_NETS = {"gats": GATNet, "hist": HISTNet, "igmtf": IGMTFNet}


def _daily_feed(
    model: nn.Module,
    samples: SampleSet,
    data: DeviceSamples,
    device: torch.device,
    config: ModelConfig | None,
    concepts: Concepts | None,
    train_samples: SampleSet | None,
) -> Feed:
    if config is None:
        raise ValueError(f"{type(model).__name__} scores one day at a time and needs its ModelConfig (config=...)")
    if not isinstance(model, CROSS_SECTIONAL_NETS.get(config.model, ())):
        raise ValueError(f"config {config.name!r} is a {config.model} model, the network a {type(model).__name__}")
    context = make_context(config, concepts, device)
    if isinstance(model, IGMTFNet):
        if train_samples is None or train_samples.n_samples == 0:
            raise ValueError(f"model {config.name!r} (IGMTF) needs its training samples to rebuild its memory")
        train_data = DeviceSamples.from_samples(train_samples, device)
        train_feed = Feed.build(context, train_samples, train_data, concepts)
        keep = ~bad_input_mask(train_samples)
        refresh_memory(model, train_feed, DayIndex.from_samples(train_samples, device, keep))
    return Feed.build(context, samples, data, concepts)


def predict(
    model: nn.Module,
    samples: SampleSet,
    device: str | torch.device = "auto",
    batch_size: int = 800,
    log: Log = None,
    name: str = "scoring",
    progress_every_s: float = PROGRESS_EVERY_S,
    *,
    config: ModelConfig | None = None,
    concepts: Concepts | None = None,
    train_samples: SampleSet | None = None,
) -> np.ndarray:
    """Scores ``[n_samples]`` float32 in sample order, every sample kept (the last partial batch too).

    Samples whose inputs hold NaN or inf get a NaN score and never enter the network (so they cannot disturb
    the others, and cost nothing). On a CPU with several torch threads and at least two batches per thread,
    batches of ``CPU_THREAD_BATCH`` samples (``CPU_THREAD_BATCH_GRU`` for the GRU networks) run side by side, one
    per thread, each thread single-threaded (torch's setting restored after); ``batch_size`` applies otherwise.
    The model is moved to ``device`` and left in the train/eval mode it came in.
    ``log`` (a callable or a logger) gets a progress line every ``progress_every_s`` seconds: samples done /
    total, elapsed, time left.

    A cross-sectional network (GATs, HIST, IGMTF) is scored one trading day (its samples with good inputs) at a
    time and needs ``config``; HIST also ``concepts``, IGMTF ``train_samples`` (its training segment, from which
    its memory is recomputed, samples with bad inputs left out).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = samples.n_samples
    if n == 0:
        return np.empty(0, dtype=np.float32)
    dev = torch.device(resolve_device(device))
    bad = bad_input_mask(samples)
    good = np.flatnonzero(~bad) if bad.any() else None
    data = DeviceSamples.from_samples(samples, dev)
    n_good = n if good is None else len(good)
    was_training = model.training
    model.to(dev).eval()
    out = torch.full((n,), float("nan"), dtype=torch.float32, device=dev)
    t0 = last = time.perf_counter()
    try:
        with torch.inference_mode():
            workers = 1
            if isinstance(model, tuple(CROSS_SECTIONAL_NETS.values())):
                feed = _daily_feed(model, samples, data, dev, config, concepts, train_samples)
                days = DayIndex.from_samples(samples, dev, ~bad)
                parts: list[torch.Tensor | slice] = [days.day(d) for d in range(days.n_days)]
            else:
                feed = Feed(data, Context("plain"))
                order = None if good is None else torch.from_numpy(good).to(dev)
                thread_batch = _cpu_thread_batch(model)
                workers = _cpu_workers(dev, -(-n_good // thread_batch))
                rows = thread_batch if workers > 1 else batch_size
                parts = [
                    slice(s, min(s + rows, n_good)) if order is None else order[s : s + rows]
                    for s in range(0, n_good, rows)
                ]

            def score(part: torch.Tensor | slice) -> int:
                with torch.inference_mode():  # per thread
                    out[part] = feed(model, part).float()
                return part.stop - part.start if isinstance(part, slice) else len(part)

            done = 0
            for size in _run_parts(score, parts, workers):
                done += size
                now = time.perf_counter()
                if log is not None and now - last >= progress_every_s and done < n_good:
                    last = now
                    left = (now - t0) / done * (n_good - done)
                    emit(
                        log,
                        f"{name}: {done}/{n_good} samples scored, {now - t0:.0f} s elapsed, about {left:.0f} s left",
                    )
    finally:
        model.train(was_training)
    if log is not None:
        emit(log, f"{name}: {n_good} samples scored in {time.perf_counter() - t0:.1f} s ({n - n_good} with bad input)")
    return out.cpu().numpy()


def _cpu_thread_batch(model: nn.Module) -> int:
    """Samples per batch when batches run side by side on CPU threads (a sample's score does not depend on the
    batch it is scored in, so the training batch size need not apply)."""
    rnn = getattr(model, "rnn", None)
    if isinstance(model, (RecurrentNet, ALSTMNet)) and type(rnn) is nn.GRU:
        return CPU_THREAD_BATCH_GRU
    return CPU_THREAD_BATCH


def _cpu_workers(device: torch.device, n_parts: int) -> int:
    """Threads that score batches side by side: torch's CPU threads, for a run of at least two batches each."""
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), n_parts // 2))


def _run_parts(score, parts: list, workers: int):
    """``score(part)`` for every part, in order; with several workers, each on its own thread with torch's
    intra-op threads set to 1 for the run (restored after)."""
    if workers <= 1:
        yield from (score(part) for part in parts)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(score, parts)
    finally:
        torch.set_num_threads(threads)
