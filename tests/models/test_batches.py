"""Device batches (flat reshape order, sequence gather) and predict."""

from __future__ import annotations

import numpy as np
import torch

from models.batches import DeviceSamples
from models.networks import GRUNet
from models.scoring import predict
from processing.samples import SampleSet
from tests.models.synthetic import flat_set, sequence_set


def test_flat_row_becomes_time_by_feature_oldest_first() -> None:
    # An Alpha360 row is CLOSE59..CLOSE0, OPEN59..OPEN0, ..., VOLUME59..VOLUME0: block f, position t.
    f_idx, t_idx = np.meshgrid(np.arange(6), np.arange(60), indexing="ij")
    row = (100 * f_idx + t_idx).astype(np.float32).reshape(1, 360)  # value = 100*feature + time position
    rows = np.vstack([row, row + 0.5])
    s = SampleSet(
        rows,
        np.array([[1], [0]]),
        np.zeros(2, np.float32),
        np.array(["2020-01-01"] * 2, "M8[D]"),
        np.array(["A", "B"]),
        "flat",
        6,
    )
    x = DeviceSamples.from_samples(s, "cpu").inputs(torch.arange(2))
    assert x.shape == (2, 60, 6)
    assert x.is_contiguous()
    expected = np.stack([row + 0.5, row]).reshape(2, 6, 60).transpose(0, 2, 1)
    np.testing.assert_array_equal(x.numpy(), expected)
    # time runs oldest -> today: the last step holds the "...0" columns (today's values) of every block
    np.testing.assert_array_equal(x[1, -1].numpy(), [59, 159, 259, 359, 459, 559])
    np.testing.assert_array_equal(x[1, 0].numpy(), [0, 100, 200, 300, 400, 500])
    np.testing.assert_array_equal(x.numpy(), s.dense_inputs(np.array([0, 1])))


def test_sequence_gather_matches_dense_inputs() -> None:
    s = sequence_set(n_inst=3, n_days=9, d_feat=4, step_len=5)
    data = DeviceSamples.from_samples(s, "cpu")
    idx = torch.tensor([7, 0, 26, 13])
    np.testing.assert_array_equal(data.inputs(idx).numpy(), s.dense_inputs(idx.numpy()))
    np.testing.assert_array_equal(data.inputs(slice(2, 5)).numpy(), s.dense_inputs(np.arange(2, 5)))


def test_predict_keeps_every_sample_and_ignores_batch_size() -> None:
    torch.manual_seed(0)
    s = flat_set(n_inst=7, n_days=5, d_feat=3, steps=8)  # 35 samples
    net = GRUNet(3, hidden_size=4).train()
    reference = net.eval()(torch.from_numpy(s.dense_inputs())).detach().numpy()
    net.train()
    for batch in (1, 8, 35, 100):
        out = predict(net, s, "cpu", batch)
        assert out.shape == (35,) and out.dtype == np.float32
        np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)
    assert net.training  # mode restored


def test_predict_gives_nan_only_for_samples_with_nan_inputs() -> None:
    torch.manual_seed(0)
    s = sequence_set(n_inst=2, n_days=6, d_feat=4, step_len=3)
    net = GRUNet(4, hidden_size=4)
    clean = predict(net, s, "cpu", 5)
    rows = s.rows.copy()
    rows[2, 1] = np.nan  # instrument 0, day 2: used by the windows of days 2, 3 and 4
    dirty = SampleSet(rows, s.windows, s.labels, s.dates, s.instruments, s.layout, s.d_feat)
    out = predict(net, dirty, "cpu", 5)
    bad = np.isin(np.arange(12), [2, 3, 4])
    assert np.isnan(out[bad]).all()
    # The clean samples keep their scores; a batch holding a masked sample may take another GEMM kernel path, so
    # equal up to float32 rounding (the last bit), not bit for bit.
    assert np.isfinite(out[~bad]).all()
    np.testing.assert_allclose(out[~bad], clean[~bad], rtol=1e-6, atol=1e-7)
