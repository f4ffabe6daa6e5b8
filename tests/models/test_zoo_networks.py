"""The zoo networks (models/nets): shapes, Qlib's names, seeding, learning, and the per-day graph semantics.

Equality with Qlib's own classes is checked by scripts/parity_zoo.py (needs pyqlib); these tests need torch only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from models.nets import (
    GATNet,
    HISTNet,
    IGMTFNet,
    LocalformerNet,
    TCNNet,
    TrainMemory,
    TransformerNet,
)
from models.nets.common import cosine_similarity, load_base_weights, masked_softmax
from models.nets.transformer import newest_step
from models.networks import GRUNet, LSTMNet
from models.training import masked_mse

H = 8  # hidden width of the small test networks
# model type -> network class; the _ts configurations use the same class with d_feat 20
ZOO_NETWORKS: dict[str, type[nn.Module]] = {
    "transformer": TransformerNet,
    "localformer": LocalformerNet,
    "tcn": TCNNet,
    "gats": GATNet,
    "hist": HISTNet,
    "igmtf": IGMTFNet,
}


def small(kind: str, d_feat: int) -> nn.Module:
    if kind in ("transformer", "localformer"):
        return ZOO_NETWORKS[kind](d_feat, d_model=H, nhead=2, num_layers=2)
    if kind == "tcn":
        return TCNNet(d_feat, n_chans=H, num_layers=2, kernel_size=3, dropout=0.0)
    return ZOO_NETWORKS[kind](d_feat, hidden_size=H, num_layers=2, base_model="LSTM")


def memory_for(net: IGMTFNet, d_feat: int, steps: int, days: int = 4, per_day: int = 5) -> TrainMemory:
    x = torch.randn(days * per_day, steps, d_feat)
    return net.train_memory(x, torch.arange(days * per_day) // per_day)


def runner(kind: str, net: nn.Module, d_feat: int, steps: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The network as a function of one day's inputs, with the extra input its kind needs."""
    if kind == "hist":
        return lambda x: net(x, (torch.arange(x.shape[0])[:, None] % 3 == torch.arange(3)[None, :]).float())
    if kind == "igmtf":
        memory = memory_for(net, d_feat, steps)
        return lambda x: net(x, memory)
    return net


# Qlib publishes HIST and IGMTF for Alpha360 (d_feat 6 x 60 steps) only.
VIEWS = [(kind, 6, 60) for kind in sorted(ZOO_NETWORKS)] + [
    (kind, 20, 20) for kind in sorted(ZOO_NETWORKS) if kind not in ("hist", "igmtf")
]


@pytest.mark.parametrize(("kind", "d_feat", "steps"), VIEWS)
@pytest.mark.parametrize("n", [1, 9])
def test_output_is_one_finite_value_per_sample(kind: str, d_feat: int, steps: int, n: int) -> None:
    torch.manual_seed(0)
    net = small(kind, d_feat).eval()
    out = runner(kind, net, d_feat, steps)(torch.randn(n, steps, d_feat))
    assert out.shape == (n,)
    assert torch.isfinite(out).all()


def test_state_dict_names_follow_qlib() -> None:
    transformer = TransformerNet(6, d_model=8, nhead=2, num_layers=2).state_dict()
    assert transformer["pos_encoder.pe"].shape == (1000, 1, 8)
    assert {"feature_layer.weight", "decoder_layer.bias", "encoder_layer.linear1.weight"} <= set(transformer)
    assert transformer["transformer_encoder.layers.1.self_attn.in_proj_weight"].shape == (24, 8)
    localformer = LocalformerNet(20, d_model=8, nhead=2, num_layers=2).state_dict()
    assert localformer["transformer_encoder.conv.1.weight"].shape == (8, 8, 3)
    assert localformer["rnn.weight_ih_l1"].shape == (24, 8)
    tcn = TCNNet(6, n_chans=8, num_layers=2, kernel_size=3).state_dict()
    block0 = {k.removeprefix("tcn.network.0.") for k in tcn if k.startswith("tcn.network.0.")}
    weight_norm = {"bias", "weight_g", "weight_v"}
    assert block0 == {f"{m}.{p}" for m in ("conv1", "conv2", "net.0", "net.4") for p in weight_norm} | {
        "downsample.weight",
        "downsample.bias",
    }
    assert "tcn.network.1.downsample.weight" not in tcn  # 8 -> 8 channels: no skip convolution
    assert tcn["tcn.network.1.conv1.weight_g"].shape == (8, 1, 1)
    assert tcn["linear.weight"].shape == (1, 8)
    gats = GATNet(6, hidden_size=8).state_dict()
    assert gats["a"].shape == (16, 1) and gats["transformation.weight"].shape == (8, 8)
    hist = HISTNet(6, hidden_size=8).state_dict()
    assert {"fc_es_middle.weight", "fc_indi_fore.bias", "fc_out_es.weight", "fc_out.weight"} <= set(hist)
    igmtf = IGMTFNet(6, hidden_size=8).state_dict()
    assert igmtf["fc_output.weight"].shape == (16, 16) and "project1.bias" not in igmtf
    assert {"lins.linear0.weight", "lins.linear1.bias", "fc_out_pred.weight"} <= set(igmtf)


@pytest.mark.parametrize("kind", sorted(ZOO_NETWORKS))
def test_the_same_seed_gives_the_same_network(kind: str) -> None:
    x = torch.randn(5, 12, 6)

    def build(seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        torch.manual_seed(seed)
        net = small(kind, 6).eval()
        torch.manual_seed(99)  # the same extra inputs (concepts are fixed; IGMTF's memory is drawn)
        return net.state_dict(), runner(kind, net, 6, 12)(x)

    (a, out_a), (b, out_b), (c, _) = build(1), build(1), build(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(out_a, out_b)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_stacked_layers_start_as_copies_of_one_layer() -> None:
    net = LocalformerNet(6, d_model=8, nhead=2, num_layers=3)
    layers, convs = net.transformer_encoder.layers, net.transformer_encoder.conv
    for i in (1, 2):
        assert torch.equal(layers[i].linear1.weight, layers[0].linear1.weight)
        assert torch.equal(convs[i].weight, convs[0].weight)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_transformer_runs_its_last_layer_on_the_newest_step_only(num_layers: int) -> None:
    """The forward equals the whole encoder stack read at its newest step (Qlib's), values and gradients."""
    torch.manual_seed(0)
    net = TransformerNet(6, d_model=16, nhead=2, num_layers=num_layers, dim_feedforward=32)
    x = torch.randn(40, 12, 6)

    def whole(x: torch.Tensor) -> torch.Tensor:
        h = net.transformer_encoder(net.pos_encoder(net.feature_layer(x).transpose(0, 1)))
        return net.decoder_layer(h[-1])[:, 0]

    params = list(net.parameters())
    ours, theirs = net(x), whole(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    g_ours = torch.autograd.grad(ours.square().mean(), params, allow_unused=True)
    g_theirs = torch.autograd.grad(theirs.square().mean(), params, allow_unused=True)
    for a, b in zip(g_ours, g_theirs, strict=True):
        if a is None or b is None:
            assert a is None and b is None or float((a if b is None else b).abs().max()) == 0.0
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="post-norm"):
        layer = nn.TransformerEncoderLayer(16, 2, 32, norm_first=True)
        newest_step(layer, torch.randn(5, 3, 16))


def test_positional_code_is_sin_cos_of_the_position() -> None:
    pe = TransformerNet(6, d_model=4, nhead=2).pos_encoder.pe[:, 0]
    assert pe[7, 0].item() == pytest.approx(math.sin(7.0))
    assert pe[7, 1].item() == pytest.approx(math.cos(7.0))
    assert pe[7, 2].item() == pytest.approx(math.sin(7.0 / 100.0))


def test_tcn_weight_norm_and_causality() -> None:
    torch.manual_seed(0)
    net = TCNNet(3, n_chans=4, num_layers=2, kernel_size=3, dropout=0.0).eval()
    conv = net.tcn.network[0].conv1
    # at creation the normalised weight is the convolution's own default weight
    torch.testing.assert_close(conv.effective_weight(), conv.weight_v)
    with torch.no_grad():
        conv.weight_g.mul_(2.0)
    torch.testing.assert_close(conv.effective_weight(), 2.0 * conv.weight_v)
    # receptive field 1 + 2 * (3 - 1) * (1 + 2) = 13 steps: older steps cannot move the output, newer ones do
    x = torch.randn(2, 20, 3)
    older, newer = x.clone(), x.clone()
    older[:, :7] += 5.0
    newer[:, 7] += 5.0
    torch.testing.assert_close(net(older), net(x))
    assert not torch.allclose(net(newer), net(x))


def planted_day(n: int, steps: int, d_feat: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, steps, d_feat, generator=gen)
    return x, x[:, -1, 0] - 0.5 * x[:, -2, 1]  # the label is a function of the newest two steps


@pytest.mark.parametrize("kind", sorted(ZOO_NETWORKS))
def test_a_few_steps_reduce_the_loss_on_a_planted_signal(kind: str) -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    d_feat, steps = 4, 10
    net = small(kind, d_feat)
    days = [planted_day(16, steps, d_feat, gen) for _ in range(4)]  # graph models: one day per batch
    run = runner(kind, net, d_feat, steps)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def loss() -> float:
        with torch.no_grad():
            return sum(masked_mse(run(x), y).item() for x, y in days) / len(days)

    before = loss()
    for _ in range(30):
        for x, y in days:
            opt.zero_grad()
            masked_mse(run(x), y).backward()
            torch.nn.utils.clip_grad_value_(net.parameters(), 3.0)
            opt.step()
    assert loss() < 0.7 * before


# -- the per-day graph models ----------------------------------------------------------------------------
def test_gats_attention_is_a_softmax_over_the_days_stocks() -> None:
    torch.manual_seed(0)
    net = GATNet(4, hidden_size=H).eval()
    hidden = torch.randn(6, H)
    att = net.attention(hidden)
    torch.testing.assert_close(att.sum(dim=1), torch.ones(6))
    z = net.transformation(hidden)
    # Qlib's pair score for row i = 2: a . [z_j, z_i] over every stock j of the day
    raw = torch.stack([torch.cat([z[j], z[2]]) @ net.a[:, 0] for j in range(6)])
    torch.testing.assert_close(att[2], torch.softmax(nn.functional.leaky_relu(raw), dim=0))
    assert net.attention(hidden[:1]).item() == pytest.approx(1.0)  # one stock attends to itself only


@pytest.mark.parametrize("kind", ["gats", "hist", "igmtf"])
def test_graph_models_are_equivariant_to_the_order_of_the_days_stocks(kind: str) -> None:
    torch.manual_seed(0)
    net = small(kind, 4).eval()
    x = torch.randn(11, 8, 4)
    perm = torch.randperm(11)
    if kind == "hist":
        concepts = (torch.rand(11, 5) < 0.4).float()
        out, shuffled = net(x, concepts), net(x[perm], concepts[perm])
    elif kind == "igmtf":
        memory = memory_for(net, 4, 8)
        out, shuffled = net(x, memory), net(x[perm], memory)
    else:
        out, shuffled = net(x), net(x[perm])
    torch.testing.assert_close(shuffled, out[perm], rtol=1e-5, atol=1e-6)


def test_masked_softmax_equals_dropping_the_masked_columns() -> None:
    scores = torch.randn(3, 5, requires_grad=True)
    keep = torch.tensor([True, False, True, True, False])
    weights = masked_softmax(scores, keep)
    torch.testing.assert_close(weights[:, keep], torch.softmax(scores[:, keep], dim=1))
    assert (weights[:, ~keep] == 0).all()
    none = masked_softmax(scores, torch.zeros(5, dtype=torch.bool))
    assert (none == 0).all()
    none.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_cosine_similarity_guards_zero_rows() -> None:
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    sim = cosine_similarity(x, x)
    assert sim[0, 0].item() == pytest.approx(25.0 / (25.0 + 1e-6))
    assert sim[1].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "concepts",
    [
        torch.zeros(7, 4),  # no stock in any concept
        torch.zeros(7, 0),  # no concept at all
        torch.eye(7, 3),  # stocks 3-6 in none, concepts of one stock each
        torch.ones(7, 2),  # every stock in every concept
    ],
)
def test_hist_is_finite_for_degenerate_concept_matrices(concepts: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = HISTNet(4, hidden_size=H)
    x = torch.randn(7, 8, 4)
    out = net(x, concepts)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert torch.isfinite(net(x[:1], concepts[:1])).all()


def test_hist_predefined_concepts_average_their_members() -> None:
    """A concept's vector is the sum of its members' hidden states over (members + 1), as in Qlib."""
    concepts = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    hidden = torch.randn(3, H)
    share = concepts / (concepts * concepts.sum(dim=0, keepdim=True) + 1)
    vectors = share.t() @ hidden
    torch.testing.assert_close(vectors[0], (hidden[0] + hidden[1]) / 3)
    torch.testing.assert_close(vectors[1], hidden[1] / 2)


def test_hist_hidden_links_pick_each_stocks_nearest_other_stock() -> None:
    residual = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, -0.2]])
    links = HISTNet.hidden_links(residual)
    sim = cosine_similarity(residual, residual)
    # 0 <-> 1 link to each other, 2 links to 1; 3's similarities to others are all negative: it links to itself
    # with weight 0; the linked-to stocks 0 and 1 add their self-similarity on the diagonal
    expected = torch.zeros(4, 4)
    expected[0, 1], expected[1, 0], expected[2, 1] = sim[0, 1], sim[1, 0], sim[2, 1]
    expected[0, 0], expected[1, 1] = sim[0, 0], sim[1, 1]
    torch.testing.assert_close(links, expected)


def test_train_memory_pads_days_and_keeps_their_means() -> None:
    hidden = torch.arange(12.0).reshape(6, 2)
    day = torch.tensor([20, 10, 20, 30, 20, 10])  # unsorted labels; days are numbered in label order
    memory = TrainMemory.from_hidden(hidden, day)
    assert memory.hidden.shape == (3, 3, 2)
    assert memory.valid.tolist() == [[True, True, False], [True, True, True], [True, False, False]]
    torch.testing.assert_close(memory.hidden[1, :3], hidden[[0, 2, 4]])
    torch.testing.assert_close(memory.day_mean[0], hidden[[1, 5]].mean(dim=0))
    by_days = TrainMemory.from_days([hidden[[1, 5]], hidden[[0, 2, 4]], hidden[[3]]])
    torch.testing.assert_close(by_days.hidden, memory.hidden)
    torch.testing.assert_close(by_days.day_mean, memory.day_mean)


def test_igmtf_aggregates_its_nearest_training_states() -> None:
    """With every day picked and n_neighbor = all states, the aggregate is the cosine-weighted sum / n."""
    torch.manual_seed(0)
    net = IGMTFNet(4, hidden_size=H).eval()
    memory = memory_for(net, 4, 8, days=3, per_day=4)
    x = torch.randn(5, 8, 4)
    with torch.no_grad():
        out = net(x, memory, k_day=3, n_neighbor=12)
        own = net.hidden(x)
        others = net.project2(net.lins(memory.hidden.flatten(0, 1)))
        weights = cosine_similarity(net.project1(own), others) / 12
        expected = net.fc_out_pred(torch.cat([own, weights @ others], dim=1))[:, 0]
        torch.testing.assert_close(out, expected)
        # asking for more days / neighbours than there are takes what there is, without padding slots
        small_memory = memory_for(net, 4, 8, days=2, per_day=3)
        assert torch.isfinite(net(x, small_memory, k_day=10, n_neighbor=10)).all()


def test_base_weights_come_from_a_trained_rnn() -> None:
    torch.manual_seed(0)
    base = LSTMNet(4, hidden_size=H)
    gats = GATNet(4, hidden_size=H, base_model="LSTM")
    copied = load_base_weights(gats, base.state_dict())
    assert {k.split(".")[0] for k in copied} == {"rnn", "fc_out"}
    torch.testing.assert_close(gats.rnn.weight_hh_l1, base.rnn.weight_hh_l1)
    torch.testing.assert_close(gats.fc_out.weight, base.fc_out.weight)
    igmtf = IGMTFNet(4, hidden_size=H, base_model="LSTM")
    assert {k.split(".")[0] for k in load_base_weights(igmtf, base.state_dict())} == {"rnn"}
    with pytest.raises(ValueError, match=r"base shape \(\d+, \d+\) != "):
        load_base_weights(GATNet(4, hidden_size=H, base_model="LSTM"), GRUNet(4, hidden_size=H).state_dict())
    with pytest.raises(ValueError, match=r"base state_dict has no rnn\.\* entries"):
        load_base_weights(gats, {"fc_out.bias": torch.zeros(1)})
    with pytest.raises(ValueError, match="unknown base model 'lstm'"):
        HISTNet(4, base_model="lstm")


@pytest.mark.parametrize("kind", sorted(ZOO_NETWORKS))
def test_networks_follow_the_input_dtype_and_device(kind: str) -> None:
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = small(kind, 4).to(device=device, dtype=torch.float64).eval()
    x = torch.randn(6, 8, 4, dtype=torch.float64, device=device)
    if kind == "igmtf":
        days = torch.arange(12, device=device) // 4
        out = net(x, net.train_memory(torch.randn(12, 8, 4, dtype=torch.float64, device=device), days))
    elif kind == "hist":
        out = net(x, torch.ones(6, 2, device=device))
    else:
        out = net(x)
    assert out.dtype == torch.float64 and out.device.type == device


def test_igmtf_gradients_are_reproducible_on_several_cpu_threads() -> None:
    """The neighbours' gather must not accumulate its gradient with atomic adds (a multi-threaded CPU's
    ``x[index]`` backward does): the same step twice gives bit-identical gradients."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        net = IGMTFNet(6, 32, 1, base_model="LSTM")
        memory = net.train_memory(torch.randn(40 * 100, 12, 6), torch.arange(40).repeat_interleave(100))
        x = torch.randn(300, 12, 6)
        grads = []
        for _ in range(4):
            net.zero_grad()
            net(x, memory, 10, 10).square().mean().backward()
            grads.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(grads[0], g) for g in grads[1:])


def test_igmtf_memory_does_not_depend_on_the_pass_size() -> None:
    """The CPU computes the memory in passes of 512 samples (cache-sized), a GPU in 8192: the states are each
    sample's own, so the pass size only moves rounding."""
    from models.nets.igmtf import memory_chunk

    assert memory_chunk("cpu") == 512 and memory_chunk(torch.device("cuda", 0)) == 8192
    torch.manual_seed(0)
    net = IGMTFNet(6, 16, 2, base_model="LSTM")
    x, day = torch.randn(30 * 70, 12, 6), torch.arange(30).repeat_interleave(70)
    small, large = net.train_memory(x, day), net.train_memory(x, day, chunk=8192)
    assert torch.allclose(small.hidden, large.hidden, atol=1e-6) and torch.equal(small.valid, large.valid)
    assert torch.allclose(small.day_mean, large.day_mean, atol=1e-6)
