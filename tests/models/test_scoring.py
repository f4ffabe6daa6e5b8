"""predict (the scoring fast path) against a straightforward reference: dense inputs, one sample at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import scoring
from models.config import get_model_config
from models.networks import build_network
from models.scoring import predict
from processing.samples import SampleSet
from tests.models.synthetic import flat_set, sequence_set


def _reference(net: torch.nn.Module, samples: SampleSet) -> np.ndarray:
    """Qlib's order of work, naively: each sample's [T, d_feat] input on its own, NaN where any input is not finite."""
    x = samples.dense_inputs()
    out = np.full(samples.n_samples, np.nan, dtype=np.float32)
    net.eval()
    with torch.no_grad():
        for k in range(samples.n_samples):
            if np.isfinite(x[k]).all():
                out[k] = net(torch.from_numpy(x[k][None].copy()))[0].item()
    return out


def _dirty(samples: SampleSet, cells: list[tuple[int, int]]) -> SampleSet:
    rows = samples.rows.copy()
    for r, c in cells:
        rows[r, c] = np.nan if c % 2 else np.inf
    return SampleSet(
        rows, samples.windows, samples.labels, samples.dates, samples.instruments, samples.layout, samples.d_feat
    )


@pytest.mark.parametrize("name", ["lstm", "gru", "alstm", "lstm_ts", "gru_ts", "alstm_ts"])
def test_predict_equals_the_reference_for_every_model_type(name: str) -> None:
    config = get_model_config(name, hidden_size=8, num_layers=2)
    if config.layout == "flat":
        samples = _dirty(flat_set(n_inst=6, n_days=7, d_feat=config.d_feat, steps=10), [(3, 5), (20, 0)])
    else:
        samples = _dirty(sequence_set(n_inst=5, n_days=8, d_feat=config.d_feat, step_len=6), [(9, 2)])
    torch.manual_seed(1)
    net = build_network(config)
    expected = _reference(net, samples)
    assert np.isnan(expected).any() and np.isfinite(expected).sum() > samples.n_samples // 2
    logged: list[str] = []
    for batch in (1, 7, 1000):
        got = predict(net, samples, "cpu", batch, log=logged.append, progress_every_s=0.0)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6)
    assert any("samples scored" in line for line in logged)


def test_predict_logs_progress_with_time_left() -> None:
    samples = flat_set(n_inst=10, n_days=10, d_feat=3, steps=5)  # 100 samples
    net = build_network(get_model_config("gru", d_feat=3, hidden_size=4))
    lines: list[str] = []
    predict(net, samples, "cpu", 10, log=lines.append, name="gru 2020", progress_every_s=0.0)
    assert lines[0].startswith("gru 2020: 10/100 samples scored") and "s left" in lines[0]
    assert len(lines) == 10  # nine progress lines (not after the last batch) and the summary
    assert lines[-1].startswith("gru 2020: 100 samples scored in")


def test_cpu_threads_score_batches_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """With several torch threads, CPU batches run one per thread (each single-threaded): the scores equal the
    one-thread run's, bad inputs stay NaN, and the thread setting is restored."""
    config = get_model_config("gru", hidden_size=8, num_layers=2)
    # enough samples for two of the GRU's larger thread batches per thread
    samples = _dirty(flat_set(n_inst=100, n_days=130, d_feat=config.d_feat, steps=10), [(3, 5), (700, 0)])
    torch.manual_seed(2)
    net = build_network(config)
    used: list[int] = []
    run_parts = scoring._run_parts
    monkeypatch.setattr(
        scoring, "_run_parts", lambda score, parts, workers: used.append(workers) or run_parts(score, parts, workers)
    )
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = predict(net, samples, "cpu", 100)
        torch.set_num_threads(3)
        side_by_side = predict(net, samples, "cpu", 100)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert used == [1, 3]
    assert np.isnan(serial).sum() == 2
    np.testing.assert_array_equal(np.isnan(side_by_side), np.isnan(serial))
    np.testing.assert_allclose(side_by_side, serial, rtol=1e-6, atol=1e-7)
