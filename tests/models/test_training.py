"""Training semantics: learning a planted signal, NaN labels, NaN policy, seeds, early stopping, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.batches import DeviceSamples
from models.config import ModelConfig, get_model_config
from models.networks import LSTMNet
from models.scoring import predict
from models.training import evaluate_loss, masked_mse, resolve_device, train_model
from processing.samples import SampleSet
from tests.models.synthetic import daily_ic, flat_set, sequence_set, shuffle_labels_within_dates

FLAT = {"d_feat": 3, "step_len": 8}
SEQ = {"d_feat": 4, "step_len": 6}


def small(name: str, **overrides: object) -> ModelConfig:
    base = {"hidden_size": 8, "n_epochs": 8, "batch_size": 100, "lr": 2e-2, "seed": 0, "early_stop": 8}
    shape = SEQ if name.endswith("_ts") else FLAT
    return get_model_config(name, **{**base, **shape, **overrides})


def segments(name: str) -> tuple[SampleSet, SampleSet, SampleSet]:
    make = sequence_set if name.endswith("_ts") else flat_set
    return make(seed=1), make(n_days=15, seed=2), make(n_days=15, seed=3)


@pytest.mark.parametrize("name", ["lstm", "gru", "alstm", "lstm_ts", "gru_ts", "alstm_ts"])
def test_learns_the_planted_signal_and_not_shuffled_labels(name: str) -> None:
    train, valid, test = segments(name)
    result = train_model(small(name), train, valid, device="cpu")
    ic = daily_ic(predict(result.model, test, "cpu", 256), test)
    assert ic > 0.6, ic
    assert result.history[-1]["valid_loss"] < result.history[0]["valid_loss"]
    assert not result.model.training
    assert result.epochs_run == len(result.history) and result.n_train == train.n_samples
    assert result.samples_per_s > 0 and result.device == "cpu"

    # The same network on labels shuffled across instruments within each day has nothing to learn.
    noise = train_model(
        small(name),
        shuffle_labels_within_dates(train, 1),
        shuffle_labels_within_dates(valid, 2),
        device="cpu",
    )
    noise_ic = daily_ic(predict(noise.model, test, "cpu", 256), test)
    assert abs(noise_ic) < 0.25, noise_ic


def test_masked_mse_equals_mse_of_the_labelled_samples() -> None:
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    label = torch.tensor([1.5, float("nan"), 2.0, float("inf")])
    loss = masked_mse(pred, label)
    loss.backward()
    assert loss.item() == pytest.approx(((1.0 - 1.5) ** 2 + (3.0 - 2.0) ** 2) / 2)
    torch.testing.assert_close(pred.grad, torch.tensor([-0.5, 0.0, 1.0, 0.0]))
    assert masked_mse(pred, torch.full((4,), float("nan"))).item() == 0.0


def with_labels(s: SampleSet, labels: np.ndarray) -> SampleSet:
    return SampleSet(s.rows, s.windows, labels.astype(np.float32), s.dates, s.instruments, s.layout, s.d_feat)


def test_nan_labels_are_left_out_of_the_loss() -> None:
    train = flat_set(n_inst=30, n_days=10, seed=4)  # 300 samples
    valid = flat_set(n_inst=20, n_days=5, seed=5)  # 100 samples: one (partial) evaluation batch
    labels = train.labels.copy()
    holes = np.random.default_rng(0).choice(300, 60, replace=False)
    labels[holes] = np.nan
    with_nan = with_labels(train, labels)
    dropped = train.subset(np.isfinite(labels))
    # One full batch each, holding the same 240 labelled samples: the gradient steps must agree.
    a = train_model(small("lstm", n_epochs=2, batch_size=300), with_nan, valid, device="cpu")
    b = train_model(small("lstm", n_epochs=2, batch_size=240), dropped, valid, device="cpu")
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["valid_loss"]) for h in a.history)
    for h_a, h_b in zip(a.history, b.history, strict=True):
        assert h_a["train_loss"] == pytest.approx(h_b["train_loss"], rel=1e-5)
        assert h_a["valid_loss"] == pytest.approx(h_b["valid_loss"], rel=1e-5)
    for key, value in a.model.state_dict().items():
        torch.testing.assert_close(value, b.model.state_dict()[key], rtol=1e-5, atol=1e-6)


def test_nan_inputs_are_dropped_for_gru_and_refused_otherwise() -> None:
    train, valid = flat_set(seed=1), flat_set(n_days=15, seed=2)
    rows = train.rows.copy()
    rows[[3, 50], 5] = np.nan
    labels = train.labels.copy()
    labels[7] = np.nan
    dirty = SampleSet(rows, train.windows, labels, train.dates, train.instruments, "flat", 3)
    result = train_model(small("gru", n_epochs=1), dirty, valid, device="cpu")
    assert result.dropped == {"train": 3, "valid": 0}
    assert result.n_train == train.n_samples - 3
    with pytest.raises(ValueError, match=r"2 train samples have NaN/inf inputs \(first: SH600003 2020-01-01\)"):
        train_model(small("lstm", n_epochs=1), dirty, valid, device="cpu")


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    train, valid, _ = segments("alstm_ts")
    runs = [train_model(small("alstm_ts", n_epochs=2, seed=s), train, valid, device="cpu") for s in (5, 5, 6)]
    first, again, other = (r.model.state_dict() for r in runs)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    assert runs[0].history[-1]["valid_loss"] == runs[1].history[-1]["valid_loss"]
    assert runs[0].seed == 5
    # an unseeded run draws a seed and reports it, so it can be repeated
    drawn = train_model(small("lstm", n_epochs=1, seed=None), *segments("lstm")[:2], device="cpu")
    repeat = train_model(small("lstm", n_epochs=1, seed=drawn.seed), *segments("lstm")[:2], device="cpu")
    assert all(torch.equal(v, repeat.model.state_dict()[k]) for k, v in drawn.model.state_dict().items())


def test_early_stopping_restores_the_best_epoch() -> None:
    train = flat_set(seed=1)
    valid = flat_set(n_days=15, seed=2)
    contrary = with_labels(valid, -valid.labels)  # learning the train signal makes the valid loss worse
    config = small("lstm", n_epochs=50, early_stop=3, lr=2e-2)
    result = train_model(config, train, contrary, device="cpu")
    scores = [h["valid_score"] for h in result.history]
    assert result.best_epoch == int(np.argmax(scores))
    assert result.epochs_run == result.best_epoch + 1 + config.early_stop < config.n_epochs
    assert result.best_score == pytest.approx(max(scores))
    # the returned weights are the best epoch's: they reproduce its valid loss
    loss = evaluate_loss(result.model, DeviceSamples.from_samples(contrary, "cpu"), config.batch_size)
    assert loss.item() == pytest.approx(result.history[result.best_epoch]["valid_loss"], rel=1e-6)
    assert result.history[-1]["valid_loss"] > loss.item()


def test_evaluation_drops_the_last_partial_batch() -> None:
    torch.manual_seed(0)
    s = flat_set(n_inst=25, n_days=10, seed=3)  # 250 samples, batches of 100 -> the last 50 are not scored
    net = LSTMNet(3, hidden_size=4).eval()
    x = torch.from_numpy(s.dense_inputs())
    y = torch.from_numpy(s.labels)
    with torch.no_grad():
        pred = net(x)
    by_batch = [torch.mean((pred[i : i + 100] - y[i : i + 100]) ** 2).item() for i in (0, 100)]
    got = evaluate_loss(net, DeviceSamples.from_samples(s, "cpu"), 100).item()
    assert got == pytest.approx(np.mean(by_batch), rel=1e-5)


def test_empty_and_mismatched_segments_are_refused() -> None:
    train, valid, _ = segments("lstm")
    with pytest.raises(ValueError, match="the valid segment is empty"):
        train_model(small("lstm"), train, valid.subset(np.zeros(valid.n_samples, bool)), device="cpu")
    with pytest.raises(ValueError, match="the train segment is empty"):
        train_model(small("lstm"), train.subset(np.zeros(train.n_samples, bool)), valid, device="cpu")
    with pytest.raises(ValueError, match="layout 'flat' but model 'lstm_ts' expects 'sequence'"):
        train_model(small("lstm_ts"), train, valid, device="cpu")
    with pytest.raises(ValueError, match="8 time steps but model 'lstm' expects step_len=60"):
        train_model(get_model_config("lstm", d_feat=3), train, valid, device="cpu")


def test_segment_shorter_than_a_batch_is_one_batch() -> None:
    train, valid = flat_set(n_inst=10, n_days=5, seed=1), flat_set(n_inst=10, n_days=3, seed=2)
    result = train_model(small("gru", n_epochs=2, batch_size=800), train, valid, device="cpu")
    assert all(np.isfinite(h["valid_loss"]) for h in result.history)
    assert result.best_epoch >= 0


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("tpu-ish")


@pytest.mark.parametrize("per_pass", [1, 3, 8])
def test_evaluation_passes_equal_a_batch_by_batch_loop(per_pass: int) -> None:
    # Several loss batches per forward pass (the CUDA default) or one (the CPU's) give Qlib's batch-by-batch mean
    # loss and IC: the last partial batch dropped, NaN labels left out of their batch's MSE and IC.
    from models.eval_passes import evaluate_batches

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1037, 4, generator=gen)
    labels = x[:, 0] * 0.5 + torch.randn(1037, generator=gen)
    labels[torch.rand(1037, generator=gen) < 0.1] = float("nan")
    weight = torch.tensor([0.3, -0.2, 0.1, 0.05])
    loss, ic = evaluate_batches(lambda part: x[part] @ weight, labels, 100, with_ic=True, batches_per_pass=per_pass)
    losses, ics = [], []
    for start in range(0, 1000, 100):
        pred, label = x[start : start + 100] @ weight, labels[start : start + 100]
        keep = torch.isfinite(label)
        losses.append(((pred[keep] - label[keep]) ** 2).mean())
        ics.append(torch.corrcoef(torch.stack([pred[keep], label[keep]]))[0, 1])
    assert torch.allclose(loss, torch.stack(losses).mean(), rtol=1e-5)
    assert torch.allclose(ic, torch.stack(ics).mean(), rtol=1e-4)
