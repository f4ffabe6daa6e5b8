"""Training with Qlib's semantics and a device-resident data path.

Per epoch, as Qlib's ``fit``: one pass of shuffled training batches (the last partial batch dropped), Adam,
MSE over the labelled samples, element-wise gradient clipping; then the loss of the train and valid segments
in fixed order, batch by batch (the last partial batch dropped) and averaged over batches; the valid score
(= -loss) drives early stopping and the best weights are restored at the end.

Speed: the segments live on the device as tensors, a batch is an index gather, the shuffle is a seeded
``torch.randperm`` on the device, and losses stay on the device until one synchronisation per epoch.

NaN inputs follow ``config.nan_policy`` (see ModelConfig): "drop" for the non-TS GRU as Qlib's ``dropna()``
(samples with a NaN/inf input or label leave train and valid), "error" for the others, which Qlib would train
on until the weights turn NaN; the YAML processors (RobustZScoreNorm + Fillna, ffill+bfill windows) leave no
NaN input. NaN labels never enter the loss.

Deviations from Qlib, all in cases where Qlib misbehaves:
* a segment with fewer samples than ``batch_size`` is used as one partial batch (Qlib would train on nothing
  and score NaN);
* a batch whose labels are all missing adds nothing to the loss averages (Qlib would average in a NaN);
* labels that are +-inf count as missing, like NaN (Qlib's loss masks NaN only), and "drop" also drops
  samples with +-inf inputs (pandas ``dropna`` keeps them);
* the train loss is evaluated in sample order for the TS models too (Qlib reuses the shuffled train loader);
* if the valid score never improves (e.g. NaN weights from the first epoch), the initial weights are kept and
  ``best_epoch`` is -1.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from models.batches import DeviceSamples, bad_input_mask
from models.config import ModelConfig
from models.networks import build_network, count_parameters
from processing.samples import SampleSet

EVAL_BATCHES_PER_PASS = 8  # evaluation runs several loss batches per forward pass; the per-batch losses are kept

Log = Callable[[str], Any] | logging.Logger | None  # a callable or anything with .info


def resolve_device(name: str | torch.device = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; explicit names are checked."""
    text = str(name)
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"device={text!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:n]'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={text!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={text!r} requested but MPS is not available; use 'auto' or 'cpu'")
    return text


def masked_mse(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite labels (0 when none), without a host synchronisation."""
    mask = torch.isfinite(label)
    diff = torch.where(mask, pred - torch.where(mask, label, 0.0), 0.0)
    return diff.square().sum() / mask.sum().clamp_min(1)


@dataclass
class TrainResult:
    model: nn.Module  # best weights, eval mode
    history: list[dict[str, float]]  # per epoch: epoch, train_loss, valid_loss, train_score, valid_score, seconds
    best_epoch: int
    epochs_run: int
    best_score: float
    wall_time_s: float
    samples_per_s: float  # training samples per second of the training passes (evaluation excluded)
    device: str
    n_parameters: int
    seed: int
    n_train: int  # samples used (after the NaN policy)
    n_valid: int
    dropped: dict[str, int] = field(default_factory=dict)  # samples removed by nan_policy="drop"


def emit(log: Log, message: str) -> None:
    """Send a progress line to ``log`` (a logger, a callable, or None for silence)."""
    if log is None:
        return
    if hasattr(log, "info"):
        log.info(message)
    else:
        log(message)


def _check_samples(config: ModelConfig, samples: SampleSet, segment: str) -> None:
    if samples.n_samples == 0:
        raise ValueError(f"the {segment} segment is empty (0 samples); widen its date range or check the data")
    if samples.layout != config.layout:
        raise ValueError(
            f"{segment} samples have layout {samples.layout!r} but model {config.name!r} expects {config.layout!r}"
        )
    if samples.d_feat != config.d_feat:
        raise ValueError(
            f"{segment} samples have d_feat={samples.d_feat} but model {config.name!r} expects d_feat={config.d_feat}"
        )
    if samples.step_len != config.step_len:
        raise ValueError(
            f"{segment} samples have {samples.step_len} time steps but model {config.name!r} expects "
            f"step_len={config.step_len}"
        )


def _apply_nan_policy(config: ModelConfig, samples: SampleSet, segment: str) -> tuple[SampleSet, int]:
    bad = bad_input_mask(samples)
    if config.nan_policy == "drop":
        bad |= ~np.isfinite(samples.labels)
        if bad.any():
            samples = samples.subset(~bad)
        if samples.n_samples == 0:
            raise ValueError(f"the {segment} segment is empty after dropping samples with NaN inputs or labels")
        return samples, int(bad.sum())
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{int(bad.sum())} {segment} samples have NaN/inf inputs (first: {samples.instruments[first]} "
            f"{samples.dates[first]}); add a Fillna processor or use nan_policy='drop' for model {config.name!r}"
        )
    if not np.isfinite(samples.labels).any():
        raise ValueError(f"the {segment} segment has no finite labels")
    return samples, 0


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch (inside a forked RNG state, so the caller's stream is untouched) and numpy, as Qlib does;
    on CUDA ask cuDNN for its deterministic kernels for the duration."""
    cuda = device.type == "cuda"
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        if cuda:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            yield
        finally:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


class _PhaseTimer:
    """Time of the training passes: CUDA events (read after the epoch's synchronisation) or the wall clock."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.total = 0.0

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            self._end = torch.cuda.Event(enable_timing=True)
            self._end.record()
        else:
            self.total += time.perf_counter() - self._t0

    def collect(self) -> None:
        """Call after a synchronisation."""
        if self.cuda:
            self.total += self._start.elapsed_time(self._end) / 1000.0


def _autocast(config: ModelConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if config.bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def evaluate_loss(
    forward: Callable[[torch.Tensor], torch.Tensor],
    data: DeviceSamples,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """Mean over loss batches (in sample order, last partial batch dropped) of the batch MSE; a 0-d tensor.

    Several loss batches go through the network at once; the per-batch MSEs are formed afterwards, so the
    result equals a batch-by-batch pass. A segment shorter than one batch counts as a single batch.
    """
    n = len(data)
    size = batch_size if n >= batch_size else n
    usable = (n // size) * size
    step = size * EVAL_BATCHES_PER_PASS
    total = torch.zeros((), device=data.labels.device)
    batches = torch.zeros((), device=data.labels.device)
    with torch.no_grad():
        for start in range(0, usable, step):
            part = slice(start, min(start + step, usable))
            with autocast():
                pred = forward(data.inputs(part))
            label = data.labels[part]
            mask = torch.isfinite(label)
            sq = torch.where(mask, pred.float() - torch.where(mask, label, 0.0), 0.0).square()
            sums = sq.view(-1, size).sum(dim=1)
            counts = mask.view(-1, size).sum(dim=1)
            has = counts > 0
            total += torch.where(has, sums / counts.clamp_min(1), 0.0).sum()
            batches += has.sum()
    return total / batches  # NaN when no batch has a label


def _make_optimizer(config: ModelConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer.lower() == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    return torch.optim.SGD(model.parameters(), lr=config.lr)


def train_model(
    config: ModelConfig,
    train: SampleSet,
    valid: SampleSet,
    device: str | torch.device = "auto",
    log: Log = None,
) -> TrainResult:
    """Train ``config``'s network on ``train`` with early stopping on ``valid``; see the module docstring."""
    t_begin = time.perf_counter()
    _check_samples(config, train, "train")
    _check_samples(config, valid, "valid")
    train, dropped_train = _apply_nan_policy(config, train, "train")
    valid, dropped_valid = _apply_nan_policy(config, valid, "valid")
    dev = torch.device(resolve_device(device))
    seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF

    with _seeded(seed, dev):
        model = build_network(config).to(dev)
        forward: Callable[[torch.Tensor], torch.Tensor] = model
        if config.torch_compile and dev.type == "cuda":
            forward = torch.compile(model)
        optimizer = _make_optimizer(config, model)
        params = list(model.parameters())
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        train_data = DeviceSamples.from_samples(train, dev)
        valid_data = DeviceSamples.from_samples(valid, dev)

        n_train = len(train_data)
        size = config.batch_size if n_train >= config.batch_size else n_train
        if size < config.batch_size:
            emit(log, f"{config.name}: {n_train} train samples < batch_size {config.batch_size}; one partial batch")
        n_batches = n_train // size
        if config.max_batches_per_epoch and config.max_batches_per_epoch < n_batches:
            emit(
                log,
                f"{config.name}: {config.max_batches_per_epoch} of {n_batches} train batches per epoch "
                "(max_batches_per_epoch), drawn by the epoch's seeded shuffle",
            )
            n_batches = config.max_batches_per_epoch

        def autocast() -> contextlib.AbstractContextManager:
            return _autocast(config, dev)

        best_state = copy.deepcopy(model.state_dict())
        best_score, best_epoch, stall = -np.inf, -1, 0
        history: list[dict[str, float]] = []
        timer = _PhaseTimer(dev)
        epoch = -1
        for epoch in range(config.n_epochs):  # noqa: B007 - epoch is read after the loop
            t_epoch = time.perf_counter()
            model.train()
            timer.start()
            perm = torch.randperm(n_train, device=dev, generator=gen)
            step_losses = torch.zeros((), device=dev)
            for b in range(n_batches):
                idx = perm[b * size : (b + 1) * size]
                with autocast():
                    pred = forward(train_data.inputs(idx))
                loss = masked_mse(pred.float(), train_data.labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_value_(params, config.clip_value)
                optimizer.step()
                step_losses += loss.detach()
            timer.stop()

            model.eval()
            if config.eval_train:
                train_loss = evaluate_loss(forward, train_data, config.batch_size, autocast)
            else:
                train_loss = step_losses / max(n_batches, 1)
            valid_loss = evaluate_loss(forward, valid_data, config.batch_size, autocast)
            tr, va = torch.stack([train_loss, valid_loss]).tolist()  # the epoch's one synchronisation
            timer.collect()
            valid_score = -va
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": tr,
                    "valid_loss": va,
                    "train_score": -tr,
                    "valid_score": valid_score,
                    "seconds": time.perf_counter() - t_epoch,
                }
            )
            # Progress with a time-left estimate from the mean epoch so far (early stopping may end sooner).
            elapsed = time.perf_counter() - t_begin
            per_epoch = sum(h["seconds"] for h in history) / len(history)
            left = per_epoch * (config.n_epochs - epoch - 1)
            emit(
                log,
                f"{config.name} epoch {epoch + 1}/{config.n_epochs}: train loss {tr:.6f} valid loss {va:.6f} "
                f"({history[-1]['seconds']:.1f} s, {n_batches} batches; elapsed {elapsed:.0f} s, "
                f"at most {left:.0f} s left)",
            )
            if valid_score > best_score:  # False for NaN
                best_score, best_epoch, stall = valid_score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stall += 1
                if stall >= config.early_stop:
                    emit(log, f"{config.name}: early stop after epoch {epoch}, best epoch {best_epoch}")
                    break

    model.load_state_dict(best_state)
    model.eval()
    epochs_run = epoch + 1
    trained = epochs_run * n_batches * size
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        best_score=float(best_score),
        wall_time_s=time.perf_counter() - t_begin,
        samples_per_s=trained / timer.total if timer.total > 0 else float("nan"),
        device=str(dev),
        n_parameters=count_parameters(model),
        seed=seed,
        n_train=n_train,
        n_valid=len(valid_data),
        dropped={"train": dropped_train, "valid": dropped_valid},
    )
