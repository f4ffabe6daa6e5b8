"""The evaluation passes of a training epoch: the loss (and IC) of a segment, averaged over Qlib's batches.

Qlib's ``test_epoch`` scores a segment batch by batch and averages: loss batches of ``batch_size`` samples in
sample order (the last partial batch dropped) for most models, one trading day per batch for the daily ones.
The averages stay on the device (0-d tensors); the trainer reads them once per epoch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from models.batches import DeviceSamples
from models.daily import DayIndex
from models.metrics import group_stats

# On CUDA evaluation runs several loss batches per forward pass (fewer launches; the per-batch losses are kept).
# On the CPU one batch per pass is fastest: measured at 1 and 2 threads, a pass of 8 batches runs the LSTM 28 %,
# the Transformer 28 % and TCN-ts 56 % slower per sample (bigger activations fall out of cache and page-fault).
EVAL_BATCHES_PER_PASS = 8

Autocast = Callable[[], contextlib.AbstractContextManager]
# Network outputs for samples (a tensor of sample numbers or a slice): a models.feeds.Feed bound to a forward.
Predict = Callable[[torch.Tensor | slice], torch.Tensor]


def evaluate_batches(
    predict: Predict,
    labels: torch.Tensor,
    batch_size: int,
    autocast: Autocast = contextlib.nullcontext,
    with_ic: bool = False,
    batches_per_pass: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over loss batches (in sample order, last partial batch dropped) of the batch MSE, and with
    ``with_ic`` of the batch IC (NaN otherwise); 0-d tensors.

    Several loss batches go through the network at once; the per-batch figures are formed afterwards, so the
    result equals a batch-by-batch pass. A segment shorter than one batch counts as a single batch.
    ``batches_per_pass`` defaults to the device's best (``EVAL_BATCHES_PER_PASS`` on CUDA, 1 on the CPU).
    """
    n = len(labels)
    size = batch_size if n >= batch_size else n
    usable = (n // size) * size
    device = labels.device
    if batches_per_pass is None:
        batches_per_pass = EVAL_BATCHES_PER_PASS if device.type == "cuda" else 1
    step = size * batches_per_pass
    total = torch.zeros((), device=device)
    batches = torch.zeros((), device=device)
    ic_total = torch.zeros((), device=device)
    ic_batches = torch.zeros((), device=device)
    with torch.no_grad():
        for start in range(0, usable, step):
            part = slice(start, min(start + step, usable))
            with autocast():
                pred = predict(part)
            label = labels[part]
            mask = torch.isfinite(label)
            sq = torch.where(mask, pred.float() - torch.where(mask, label, 0.0), 0.0).square()
            sums = sq.view(-1, size).sum(dim=1)
            counts = mask.view(-1, size).sum(dim=1)
            has = counts > 0
            total += torch.where(has, sums / counts.clamp_min(1), 0.0).sum()
            batches += has.sum()
            if with_ic:
                rows = part.stop - part.start
                group = torch.arange(rows, device=device) // size
                _, _, ic, defined = group_stats(pred, label, group, rows // size)
                ic_total += ic.sum()
                ic_batches += defined.sum()
    ic_mean = ic_total / ic_batches if with_ic else torch.full((), float("nan"), device=device)
    return total / batches, ic_mean  # NaN when no batch has a label


def evaluate_loss(
    forward: Callable[[torch.Tensor], torch.Tensor],
    data: DeviceSamples,
    batch_size: int,
    autocast: Autocast = contextlib.nullcontext,
) -> torch.Tensor:
    """``evaluate_batches``' loss of ``forward`` on ``data``'s inputs."""
    return evaluate_batches(lambda part: forward(data.inputs(part)), data.labels, batch_size, autocast)[0]


def evaluate_days(
    predict: Predict,
    labels: torch.Tensor,
    days: DayIndex,
    autocast: Autocast = contextlib.nullcontext,
    cross_sectional: bool = True,
    chunk: int = 8192,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over trading days of the day's MSE and of its IC (Qlib's daily ``test_epoch``); 0-d tensors.

    A cross-sectional network sees one day per forward pass; any other network sees chunks of the
    (date, instrument)-sorted samples, which gives the same predictions. Days without a finite label (loss) or
    with an undefined IC (IC) are left out of the respective mean.
    """
    n = days.n_samples
    pred = torch.empty(n, dtype=torch.float32, device=labels.device)
    with torch.no_grad():
        if cross_sectional:
            bounds = [(int(s), int(s + c)) for s, c in zip(days.starts, days.counts, strict=True)]
        else:
            bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
        for start, stop in bounds:
            with autocast():
                pred[start:stop] = predict(days.order[start:stop]).float()
        mse, has, ic, defined = group_stats(pred, labels[days.order], days.day_of, days.n_days)
    return torch.where(has, mse, 0.0).sum() / has.sum(), ic.sum() / defined.sum()
