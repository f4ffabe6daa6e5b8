"""Training with Qlib's semantics and a device-resident data path: one trainer for every model of the zoo.

Per epoch, as Qlib's ``fit``: one pass of training batches, the optimizer (Adam or SGD, with the model's weight
decay), MSE over the labelled samples, element-wise gradient clipping; then the loss (and, for ``metric="ic"``,
the IC) of the train and valid segments batch by batch, averaged over batches; the valid score (-loss, or the
IC) drives early stopping and the best weights are restored at the end.

Batches (``config.batching``):
* ``"samples"``: shuffled batches of ``batch_size`` (the last partial batch dropped); evaluation in sample order
  in batches of ``batch_size`` (last partial dropped);
* ``"days"`` / ``"days_in_order"``: one trading day's cross-section per batch, the days shuffled every epoch
  (Qlib's ``get_daily_inter(shuffle=True)``: GATs, HIST, IGMTF) or in date order (GATs_ts'
  ``DailyBatchSampler``); evaluation per day, averaged over days. ``max_batches_per_epoch`` caps days.

Per model: GATs / HIST / IGMTF start from a trained base RNN (``base_state``, the matching ``rnn.*`` /
``fc_out.*`` entries copied as Qlib's ``fit`` does); HIST reads each day's stock-to-concept rows (``concepts``);
IGMTF's memory of the train segment's hidden states is recomputed before every epoch (see ``models.feeds``).

Speed: the segments live on the device as tensors, a batch is an index gather (a day is a slice of the
(date, instrument) order), the shuffle is a seeded ``torch.randperm`` on the device, and losses stay on the
device until one synchronisation per epoch.

NaN inputs follow ``config.nan_policy`` (see ModelConfig): "drop" for the non-TS GRU as Qlib's ``dropna()``
(samples with a NaN/inf input or label leave train and valid), "error" for the others, which Qlib would train
on until the weights turn NaN; the YAML processors (RobustZScoreNorm + Fillna, ffill+bfill windows) leave no
NaN input. NaN labels never enter the loss.

Deviations from Qlib, all in cases where Qlib misbehaves:
* a segment with fewer samples than ``batch_size`` is used as one partial batch (Qlib would train on nothing
  and score NaN);
* a batch (or day) whose labels are all missing adds nothing to the loss averages, and one whose IC is
  undefined nothing to the IC average (Qlib would average in a NaN);
* labels that are +-inf count as missing, like NaN (Qlib's loss masks NaN only), and "drop" also drops
  samples with +-inf inputs (pandas ``dropna`` keeps them);
* the train loss is evaluated in sample order for the TS models too (Qlib reuses the shuffled train loader);
* Qlib's HIST and IGMTF refuse ``metric="loss"`` (a typo in their ``metric_fn``); here every model takes both;
* if the valid score never improves (e.g. NaN weights from the first epoch), the initial weights are kept and
  ``best_epoch`` is -1.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from models.batches import DeviceSamples, bad_input_mask
from models.config import CROSS_SECTIONAL, ModelConfig
from models.daily import DayIndex
from models.eval_passes import evaluate_batches, evaluate_days, evaluate_loss
from models.feeds import Feed, make_context, refresh_memory
from models.metrics import masked_mse
from models.nets.common import load_base_weights
from models.networks import build_network, count_parameters
from models.runtime import Log, PhaseTimer, autocast_for, emit, resolve_device, seeded
from processing.concepts import Concepts
from processing.samples import SampleSet

__all__ = ["Log", "TrainResult", "emit", "evaluate_loss", "make_network", "masked_mse", "resolve_device", "train_model"]


@dataclass
class TrainResult:
    model: nn.Module  # best weights, eval mode
    # per epoch: epoch, train_loss, valid_loss, train_score, valid_score, seconds (metric "ic": train_ic, valid_ic)
    history: list[dict[str, float]]
    best_epoch: int
    epochs_run: int
    best_score: float
    wall_time_s: float
    # training samples per second of the training passes (IGMTF: with its memory refresh; evaluation excluded)
    samples_per_s: float
    device: str
    n_parameters: int
    seed: int
    n_train: int  # samples used (after the NaN policy)
    n_valid: int
    dropped: dict[str, int] = field(default_factory=dict)  # samples removed by nan_policy="drop"
    base_copied: list[str] = field(default_factory=list)  # state_dict entries taken from the base network
    memory_refreshes: int = 0  # IGMTF: how often the train memory was recomputed


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


def make_optimizer(config: ModelConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam or SGD ("gd") with the config's lr and weight decay (Qlib's ``reg``), over every parameter."""
    if config.optimizer.lower() == "adam":
        if config.weight_decay:
            return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    return torch.optim.SGD(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def make_network(
    config: ModelConfig, base_state: Mapping[str, torch.Tensor] | None = None
) -> tuple[nn.Module, list[str]]:
    """``config``'s untrained network, with the base RNN's matching entries copied in when ``base_state`` is given
    (Qlib's ``fit`` does so before the first step); returns the network and the copied names."""
    model = build_network(config)
    if base_state is None:
        return model, []
    if config.model not in CROSS_SECTIONAL:
        raise ValueError(f"model {config.name!r} ({config.model}) has no base network; got base weights")
    return model, load_base_weights(model, base_state)


def train_model(
    config: ModelConfig,
    train: SampleSet,
    valid: SampleSet,
    device: str | torch.device = "auto",
    log: Log = None,
    *,
    base_state: Mapping[str, torch.Tensor] | None = None,
    concepts: Concepts | None = None,
) -> TrainResult:
    """Train ``config``'s network on ``train`` with early stopping on ``valid``; see the module docstring.

    ``base_state``: the trained base RNN's state_dict (GATs / HIST / IGMTF; without it they start from their own
    random RNN, as Qlib's with no ``model_path``). ``concepts``: HIST's stock-to-concept memberships (required).
    """
    t_begin = time.perf_counter()
    _check_samples(config, train, "train")
    _check_samples(config, valid, "valid")
    train, dropped_train = _apply_nan_policy(config, train, "train")
    valid, dropped_valid = _apply_nan_policy(config, valid, "valid")
    dev = torch.device(resolve_device(device))
    seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    use_ic = config.metric == "ic"
    if config.model in CROSS_SECTIONAL and base_state is None:
        emit(log, f"{config.name}: no base network given; the {config.base_model} starts from random weights")

    with seeded(seed, dev):
        context = make_context(config, concepts, dev)
        model, copied = make_network(config, base_state)
        model = model.to(dev)
        if copied:
            emit(log, f"{config.name}: {len(copied)} entries of the base {config.base_model} copied ({copied[0]}, ...)")
        forward = model
        if config.torch_compile and dev.type == "cuda":
            forward = torch.compile(model)
        optimizer = make_optimizer(config, model)
        params = list(model.parameters())
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        train_data = DeviceSamples.from_samples(train, dev)
        valid_data = DeviceSamples.from_samples(valid, dev)
        train_feed = Feed.build(context, train, train_data, concepts)
        valid_feed = Feed.build(context, valid, valid_data, concepts)
        n_train = len(train_data)

        def autocast() -> contextlib.AbstractContextManager:
            return autocast_for(config, dev)

        if config.daily:
            train_days = DayIndex.from_samples(train, dev)
            valid_days = DayIndex.from_samples(valid, dev)
            size, n_batches = 0, train_days.n_days
            cap = config.max_batches_per_epoch if config.max_batches_per_epoch < n_batches else 0
            if cap:
                emit(
                    log,
                    f"{config.name}: {cap} of {n_batches} train days per epoch (max_batches_per_epoch), "
                    "drawn by the epoch's seeded shuffle",
                )
                n_batches = cap
        else:
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

        def step(idx: torch.Tensor) -> torch.Tensor:
            with autocast():
                pred = train_feed(forward, idx)
            loss = masked_mse(pred.float(), train_data.labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_value_(params, config.clip_value)
            optimizer.step()
            return loss.detach()

        def evaluate(feed: Feed, days: DayIndex | None) -> tuple[torch.Tensor, torch.Tensor]:
            if days is not None:
                return evaluate_days(
                    lambda idx: feed(forward, idx),
                    feed.data.labels,
                    days,
                    autocast,
                    cross_sectional=config.model in CROSS_SECTIONAL,
                    chunk=config.batch_size * 8,
                )
            return evaluate_batches(
                lambda idx: feed(forward, idx), feed.data.labels, config.batch_size, autocast, use_ic
            )

        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        best_score, best_epoch, stall = -np.inf, -1, 0
        history: list[dict[str, float]] = []
        timer = PhaseTimer(dev)
        trained = 0
        epoch = -1
        for epoch in range(config.n_epochs):  # noqa: B007 - epoch is read after the loop
            t_epoch = time.perf_counter()
            timer.start()  # IGMTF's memory refresh is part of its training epoch, as in Qlib's fit
            if context.kind == "igmtf":  # Qlib's get_train_hidden before every train_epoch, in eval mode
                refresh_memory(model, train_feed, train_days)
            model.train()
            step_losses = torch.zeros((), device=dev)
            if config.daily:
                for d in train_days.epoch_days(gen, config.batching == "days", n_batches if cap else 0):
                    step_losses += step(train_days.day(d))
                    trained += int(train_days.counts[d])
            else:
                perm = torch.randperm(n_train, device=dev, generator=gen)
                for b in range(n_batches):
                    step_losses += step(perm[b * size : (b + 1) * size])
                trained += n_batches * size
            timer.stop()

            model.eval()
            nan = torch.full((), float("nan"), device=dev)
            train_loss, train_ic = (step_losses / max(n_batches, 1), nan)
            if config.eval_train:
                train_loss, train_ic = evaluate(train_feed, train_days if config.daily else None)
            valid_loss, valid_ic = evaluate(valid_feed, valid_days if config.daily else None)
            tr, va, tr_ic, va_ic = torch.stack([train_loss, valid_loss, train_ic, valid_ic]).tolist()  # one sync
            timer.collect()
            valid_score = va_ic if use_ic else -va
            record = {
                "epoch": epoch,
                "train_loss": tr,
                "valid_loss": va,
                "train_score": tr_ic if use_ic else -tr,
                "valid_score": valid_score,
                "seconds": time.perf_counter() - t_epoch,
            }
            if use_ic:
                record.update(train_ic=tr_ic, valid_ic=va_ic)
            history.append(record)
            # Progress with a time-left estimate from the mean epoch so far (early stopping may end sooner).
            elapsed = time.perf_counter() - t_begin
            per_epoch = sum(h["seconds"] for h in history) / len(history)
            left = per_epoch * (config.n_epochs - epoch - 1)
            unit = "days" if config.daily else "batches"
            emit(
                log,
                f"{config.name} epoch {epoch + 1}/{config.n_epochs}: train loss {tr:.6f} valid loss {va:.6f}"
                + (f" valid IC {va_ic:.4f}" if use_ic else "")
                + f" ({record['seconds']:.1f} s, {n_batches} {unit}; elapsed {elapsed:.0f} s, "
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
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        epochs_run=epoch + 1,
        best_score=float(best_score),
        wall_time_s=time.perf_counter() - t_begin,
        samples_per_s=trained / timer.total if timer.total > 0 else float("nan"),
        device=str(dev),
        n_parameters=count_parameters(model),
        seed=seed,
        n_train=n_train,
        n_valid=len(valid_data),
        dropped={"train": dropped_train, "valid": dropped_valid},
        base_copied=copied,
        memory_refreshes=context.refreshes,
    )
