"""Scoring a SampleSet with a trained network."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.batches import DeviceSamples, bad_input_mask
from models.training import resolve_device
from processing.samples import SampleSet


def predict(
    model: nn.Module, samples: SampleSet, device: str | torch.device = "auto", batch_size: int = 800
) -> np.ndarray:
    """Scores ``[n_samples]`` float32 in sample order, every sample kept (the last partial batch too).

    Samples whose inputs hold NaN or inf get a NaN score; they are fed as zeros so they cannot disturb the
    others. The model is moved to ``device`` and left in the train/eval mode it came in.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = samples.n_samples
    if n == 0:
        return np.empty(0, dtype=np.float32)
    dev = torch.device(resolve_device(device))
    bad = bad_input_mask(samples)
    if bad.any():
        rows = np.where(np.isfinite(samples.rows), samples.rows, np.float32(0.0))
        samples = SampleSet(
            rows,
            samples.windows,
            samples.labels,
            samples.dates,
            samples.instruments,
            samples.layout,
            samples.d_feat,
            samples.feature_names,
        )
    data = DeviceSamples.from_samples(samples, dev)
    was_training = model.training
    model.to(dev).eval()
    out = torch.empty(n, dtype=torch.float32, device=dev)
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                part = slice(start, min(start + batch_size, n))
                out[part] = model(data.inputs(part)).float()
    finally:
        model.train(was_training)
    scores = out.cpu().numpy()
    scores[bad] = np.nan
    return scores
