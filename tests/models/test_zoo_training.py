"""The one trainer on the zoo: every new configuration trains; daily batching, IC early stopping, weight decay,
base weights, HIST's concept rows and IGMTF's memory do what Qlib's wrappers do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models.feeds as feeds
import models.training as training
from models.batches import DeviceSamples
from models.config import CROSS_SECTIONAL
from models.daily import DayIndex
from models.feeds import Feed, make_context
from models.networks import LSTMNet, build_network
from models.scoring import predict
from models.training import make_network, make_optimizer, train_model
from processing.samples import SampleSet
from tests.models.synthetic import daily_ic
from tests.models.zoo_helpers import ZOO, ZOO_ALL, concepts_for, segments, tiny


def _base_state(name: str) -> dict[str, torch.Tensor] | None:
    """A (random) LSTM of the tiny configs' shape, standing in for the trained base."""
    config = tiny(name)
    if config.model not in CROSS_SECTIONAL:
        return None
    torch.manual_seed(5)
    return LSTMNet(config.d_feat, config.hidden_size, config.num_layers).state_dict()


@pytest.mark.parametrize("name", ZOO_ALL)
def test_every_zoo_config_trains_and_scores(name: str) -> None:
    train, valid, test = segments(name)
    concepts = concepts_for(train)
    config = tiny(name)
    result = train_model(config, train, valid, device="cpu", base_state=_base_state(name), concepts=concepts)
    assert result.epochs_run == 2 and len(result.history) == 2 and not result.model.training
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["valid_loss"]) for h in result.history)
    assert result.samples_per_s > 0 and result.n_train == train.n_samples
    assert result.best_score == max(h["valid_score"] for h in result.history)
    scores = predict(result.model, test, "cpu", 64, config=config, concepts=concepts, train_samples=train)
    assert scores.shape == (test.n_samples,) and np.isfinite(scores).all()
    assert np.std(scores) > 0


@pytest.mark.parametrize("name", ["gru", "gats", "hist", "igmtf", "gats_ts"])
def test_the_zoo_learns_the_planted_signal(name: str) -> None:
    # gru stands for the batched models; the graph models see one day per step, so more epochs.
    train, valid, test = segments(name)
    concepts = concepts_for(train)
    config = tiny(name, n_epochs=10, early_stop=10, hidden_size=16)
    result = train_model(config, train, valid, device="cpu", concepts=concepts)
    scores = predict(result.model, test, "cpu", 256, config=config, concepts=concepts, train_samples=train)
    assert daily_ic(scores, test) > 0.4


def _record_training_batches(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The sample numbers of every training step (a forward with gradients) through a Feed."""
    batches: list[np.ndarray] = []
    original = Feed.__call__

    def spy(self: Feed, forward, idx):  # type: ignore[no-untyped-def]
        if torch.is_grad_enabled():
            batches.append(idx.cpu().numpy().copy())
        return original(self, forward, idx)

    monkeypatch.setattr(Feed, "__call__", spy)
    return batches


@pytest.mark.parametrize(("name", "batching"), [("gats", "days"), ("gats_ts", "days_in_order"), ("tcn", "days")])
def test_daily_batching_gives_one_whole_day_per_batch(
    monkeypatch: pytest.MonkeyPatch, name: str, batching: str
) -> None:
    train, valid, _ = segments(name)
    batches = _record_training_batches(monkeypatch)
    config = tiny(name, batching=batching, n_epochs=3, early_stop=3)
    train_model(config, train, valid, device="cpu")
    days = np.unique(train.dates)
    assert len(batches) == 3 * len(days)
    epochs = [batches[i * len(days) : (i + 1) * len(days)] for i in range(3)]
    orders = []
    for epoch in epochs:
        visited = []
        for idx in epoch:
            day = train.dates[idx]
            assert (day == day[0]).all()  # one day per batch ...
            assert sorted(idx.tolist()) == np.flatnonzero(train.dates == day[0]).tolist()  # ... all of it
            assert (np.diff(np.searchsorted(np.unique(train.instruments), train.instruments[idx])) > 0).all()
            visited.append(day[0])
        assert sorted(visited) == list(days)  # every day once per epoch
        orders.append(visited)
    if batching == "days":
        assert orders[0] != list(days) and orders[0] != orders[1]  # shuffled, anew each epoch
    else:
        assert orders == [list(days)] * 3  # DailyBatchSampler: date order


def test_max_batches_per_epoch_caps_days(monkeypatch: pytest.MonkeyPatch) -> None:
    for batching in ("days", "days_in_order"):
        train, valid, _ = segments("gats")
        batches = _record_training_batches(monkeypatch)
        lines: list[str] = []
        train_model(tiny("gats", batching=batching, max_batches_per_epoch=5), train, valid, "cpu", lines.append)
        assert len(batches) == 2 * 5
        first = [train.dates[idx[0]] for idx in batches[:5]]
        second = [train.dates[idx[0]] for idx in batches[5:]]
        assert first != second  # a fresh draw each epoch
        if batching == "days_in_order":
            assert first == sorted(first) and second == sorted(second)
        assert any("5 of 40 train days per epoch" in line for line in lines)
        monkeypatch.undo()


def test_day_index_sorts_by_date_then_instrument() -> None:
    _, valid, _ = segments("gats_ts")  # instrument-major samples
    days = DayIndex.from_samples(valid, "cpu")
    order = days.order.numpy()
    assert days.n_days == 15 and (days.counts == 40).all() and days.n_samples == valid.n_samples
    keys = list(zip(valid.dates[order], valid.instruments[order], strict=True))
    assert keys == sorted(keys)
    assert (days.day_of.numpy() == np.repeat(np.arange(15), 40)).all()
    keep = np.arange(valid.n_samples) % 3 != 0
    assert set(DayIndex.from_samples(valid, "cpu", keep).order.tolist()) == set(np.flatnonzero(keep).tolist())


def test_ic_early_stopping_restores_the_epoch_of_the_best_valid_ic() -> None:
    train, valid, _ = segments("hist")
    concepts = concepts_for(train)
    config = tiny("hist", n_epochs=6, early_stop=6, lr=3e-2)
    result = train_model(config, train, valid, device="cpu", concepts=concepts)
    ics = [h["valid_ic"] for h in result.history]
    assert [h["valid_score"] for h in result.history] == ics
    assert result.best_epoch == int(np.argmax(ics)) and result.best_score == max(ics)
    assert len(set(np.round(ics, 6))) > 1  # the epochs differ, so the choice means something
    # The returned weights are that epoch's: their valid IC (mean over days of Pearson) is the recorded one.
    scores = predict(result.model, valid, "cpu", config=config, concepts=concepts)
    assert daily_ic(scores, valid) == pytest.approx(max(ics), abs=1e-5)


def test_ic_metric_stops_on_ic_not_on_loss() -> None:
    # Labels scaled by 100: the loss of a network predicting near zero is dominated by the scale, the IC not.
    train, valid, _ = segments("gats")

    def scaled(s: SampleSet) -> SampleSet:
        return SampleSet(s.rows, s.windows, s.labels * 100, s.dates, s.instruments, s.layout, s.d_feat)

    config = tiny("gats", metric="ic", n_epochs=5, early_stop=5)
    result = train_model(config, scaled(train), scaled(valid), device="cpu")
    assert result.best_epoch == int(np.argmax([h["valid_ic"] for h in result.history]))
    assert all(h["valid_score"] == h["valid_ic"] for h in result.history)


def test_weight_decay_reaches_the_optimizer(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[torch.optim.Optimizer] = []

    def spy(config, model):  # type: ignore[no-untyped-def]
        made.append(make_optimizer(config, model))
        return made[-1]

    monkeypatch.setattr(training, "make_optimizer", spy)
    train, valid, _ = segments("transformer")
    config = tiny("transformer", n_epochs=1)
    assert config.weight_decay == 1e-3  # Qlib's reg
    train_model(config, train, valid, device="cpu")
    train_model(config.replace(optimizer="gd", weight_decay=0.25), train, valid, device="cpu")
    assert isinstance(made[0], torch.optim.Adam) and made[0].param_groups[0]["weight_decay"] == 1e-3
    assert isinstance(made[1], torch.optim.SGD) and made[1].param_groups[0]["weight_decay"] == 0.25
    assert make_optimizer(tiny("tcn"), build_network(tiny("tcn"))).param_groups[0]["weight_decay"] == 0.0
    # and it acts: the same training without decay ends on other weights
    a = train_model(config, train, valid, device="cpu").model.state_dict()
    b = train_model(config.replace(weight_decay=0.0), train, valid, device="cpu").model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["gats", "hist", "igmtf", "gats_ts"])
def test_base_weights_are_loaded_before_the_first_step(name: str) -> None:
    config = tiny(name)
    base = _base_state(name)
    assert base is not None
    net, copied = make_network(config, base)
    assert {k for k in copied if k.startswith("rnn.")} == {k for k in base if k.startswith("rnn.")}
    for key in copied:
        assert torch.equal(net.state_dict()[key], base[key])
    fresh, _ = make_network(config)
    assert not torch.equal(fresh.state_dict()["rnn.weight_ih_l0"], base["rnn.weight_ih_l0"])

    # Through train_model: with a vanishing learning rate and one day, the trained rnn.* is still the base's.
    train, valid, _ = segments(name)
    slow = config.replace(lr=1e-12, n_epochs=1, max_batches_per_epoch=1)
    result = train_model(slow, train, valid, "cpu", base_state=base, concepts=concepts_for(train))
    assert result.base_copied == copied
    for key in copied:
        torch.testing.assert_close(result.model.state_dict()[key], base[key], atol=1e-9, rtol=0)


def test_base_weights_are_refused_where_there_is_no_base() -> None:
    with pytest.raises(ValueError, match="has no base network"):
        make_network(tiny("tcn"), _base_state("gats"))
    with pytest.raises(ValueError, match="shape"):
        make_network(tiny("gats", hidden_size=16), _base_state("gats"))


def test_hist_reads_the_days_concept_rows() -> None:
    train, valid, test = segments("hist")
    concepts = concepts_for(train)
    config = tiny("hist")
    net = build_network(config).eval()
    context = make_context(config, concepts, torch.device("cpu"))
    feed = Feed.build(context, test, DeviceSamples.from_samples(test, "cpu"), concepts)
    day = np.flatnonzero(test.dates == test.dates[0])
    rows = concepts.rows_for(test.instruments[day])
    assert rows.sum() > 0 and (rows.sum(axis=1) == 0).any()  # members of concepts, and stocks in none
    with torch.no_grad():
        ours = feed(net, torch.from_numpy(day))
        direct = net(torch.from_numpy(test.dense_inputs(day)), torch.from_numpy(rows))
    torch.testing.assert_close(ours, direct)

    # Other memberships change what HIST learns and scores.
    other = concepts_for(train, seed=7)
    a = train_model(config, train, valid, "cpu", concepts=concepts)
    b = train_model(config, train, valid, "cpu", concepts=other)
    assert a.history[0]["valid_loss"] != b.history[0]["valid_loss"]
    sa = predict(a.model, test, "cpu", config=config, concepts=concepts)
    assert not np.allclose(sa, predict(a.model, test, "cpu", config=config, concepts=other))
    with pytest.raises(ValueError, match="needs the stock-to-concept matrix"):
        train_model(config, train, valid, "cpu")
    with pytest.raises(ValueError, match="needs the stock-to-concept matrix"):
        predict(a.model, test, "cpu", config=config)


def test_igmtf_memory_is_recomputed_every_epoch_and_at_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    means: list[torch.Tensor] = []
    original = feeds.refresh_memory

    def spy(model, feed, days, chunk=None):  # type: ignore[no-untyped-def]
        memory = original(model, feed, days, chunk)
        means.append(memory.day_mean.clone())
        return memory

    monkeypatch.setattr(training, "refresh_memory", spy)
    train, valid, test = segments("igmtf")
    config = tiny("igmtf", n_epochs=3, early_stop=3)
    result = train_model(config, train, valid, "cpu")
    assert result.memory_refreshes == 3 == len(means)
    assert means[0].shape == (40, 8)  # one row per training day
    assert not torch.allclose(means[0], means[1]) and not torch.allclose(means[1], means[2])

    # Scoring rebuilds the memory from the training samples with the final weights.
    net = result.model
    memory = net.train_memory(torch.from_numpy(train.dense_inputs()), torch.from_numpy(train.dates.astype(np.int64)))
    day = np.flatnonzero(test.dates == test.dates[3])
    with torch.no_grad():
        expected = net(torch.from_numpy(test.dense_inputs(day)), memory, config.k_day, config.n_neighbor)
    scores = predict(net, test, "cpu", config=config, train_samples=train)
    np.testing.assert_allclose(scores[day], expected.numpy(), rtol=1e-5, atol=1e-6)
    _, other, _ = segments("igmtf")
    assert not np.allclose(scores, predict(net, test, "cpu", config=config, train_samples=other))
    with pytest.raises(ValueError, match="needs its training samples"):
        predict(net, test, "cpu", config=config)


@pytest.mark.parametrize("name", ["gats", "hist", "igmtf"])
def test_daily_scoring_is_one_day_at_a_time(name: str) -> None:
    train, _, test = segments(name)
    concepts = concepts_for(train)
    config = tiny(name)
    net = build_network(config)
    scores = predict(net, test, "cpu", config=config, concepts=concepts, train_samples=train)
    # The same network on each day alone (one call per day, NaN-free inputs).
    for d in np.unique(test.dates)[:3]:
        alone = test.subset(test.dates == d)
        np.testing.assert_allclose(
            predict(net, alone, "cpu", config=config, concepts=concepts, train_samples=train),
            scores[test.dates == d],
            rtol=1e-5,
            atol=1e-6,
        )
    with pytest.raises(ValueError, match="needs its ModelConfig"):
        predict(net, test, "cpu")


def test_daily_scoring_leaves_bad_inputs_out_of_the_cross_section() -> None:
    train, _, test = segments("gats")
    config = tiny("gats")
    net = build_network(config)
    rows = test.rows.copy()
    first_day = np.flatnonzero(test.dates == test.dates[0])
    rows[test.windows[first_day[2], 0], 1] = np.nan
    dirty = SampleSet(rows, test.windows, test.labels, test.dates, test.instruments, test.layout, test.d_feat)
    scores = predict(net, dirty, "cpu", config=config)
    assert np.isnan(scores[first_day[2]]) and np.isfinite(np.delete(scores, first_day[2])).all()
    clean = test.subset(np.arange(test.n_samples) != first_day[2])
    np.testing.assert_allclose(np.delete(scores, first_day[2]), predict(net, clean, "cpu", config=config), rtol=1e-6)


@pytest.mark.parametrize("name", ZOO)
def test_device_tensors_follow_the_requested_device(name: str) -> None:
    # "meta" tensors exist on every machine: whatever the trainer builds for a device must land there.
    train, _, _ = segments(name)
    days = DayIndex.from_samples(train, "meta")
    assert days.order.device.type == days.day_of.device.type == "meta"
    context = make_context(tiny("hist"), concepts_for(train), torch.device("meta"))
    assert context.concepts is not None and context.concepts.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["gats", "hist", "igmtf", "transformer_ts"])
def test_cuda_training_matches_the_cpu(name: str) -> None:
    train, valid, test = segments(name)
    concepts = concepts_for(train)
    config = tiny(name, n_epochs=1)
    kw = {"base_state": _base_state(name), "concepts": concepts}
    cpu = train_model(config, train, valid, "cpu", **kw)
    gpu = train_model(config, train, valid, "cuda", **kw)
    assert gpu.device.startswith("cuda")
    assert gpu.history[0]["valid_loss"] == pytest.approx(cpu.history[0]["valid_loss"], rel=1e-3)
    score = {"config": config, "concepts": concepts, "train_samples": train}
    np.testing.assert_allclose(
        predict(gpu.model, test, "cuda", **score), predict(cpu.model, test, "cpu", **score), atol=1e-3
    )
