"""Scoring a SampleSet with a trained network."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from models.batches import DeviceSamples, bad_input_mask
from models.training import Log, emit, resolve_device
from processing.samples import SampleSet

# Seconds between two progress lines of a long scoring run.
PROGRESS_EVERY_S = 10.0


def predict(
    model: nn.Module,
    samples: SampleSet,
    device: str | torch.device = "auto",
    batch_size: int = 800,
    log: Log = None,
    name: str = "scoring",
    progress_every_s: float = PROGRESS_EVERY_S,
) -> np.ndarray:
    """Scores ``[n_samples]`` float32 in sample order, every sample kept (the last partial batch too).

    Samples whose inputs hold NaN or inf get a NaN score and never enter the network (so they cannot disturb
    the others, and cost nothing). The model is moved to ``device`` and left in the train/eval mode it came in.
    ``log`` (a callable or a logger) gets a progress line every ``progress_every_s`` seconds: samples done /
    total, elapsed, time left.
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
    order = None if good is None else torch.from_numpy(good).to(dev)
    was_training = model.training
    model.to(dev).eval()
    out = torch.full((n,), float("nan"), dtype=torch.float32, device=dev)
    t0 = last = time.perf_counter()
    try:
        with torch.inference_mode():
            for start in range(0, n_good, batch_size):
                stop = min(start + batch_size, n_good)
                part = slice(start, stop) if order is None else order[start:stop]
                out[part] = model(data.inputs(part)).float()
                now = time.perf_counter()
                if log is not None and now - last >= progress_every_s and stop < n_good:
                    last = now
                    left = (now - t0) / stop * (n_good - stop)
                    emit(
                        log,
                        f"{name}: {stop}/{n_good} samples scored, {now - t0:.0f} s elapsed, about {left:.0f} s left",
                    )
    finally:
        model.train(was_training)
    if log is not None:
        emit(log, f"{name}: {n_good} samples scored in {time.perf_counter() - t0:.1f} s ({n - n_good} with bad input)")
    return out.cpu().numpy()
