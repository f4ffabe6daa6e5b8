"""On the default synthetic market, with `make run`'s training settings (the quick profile), lstm, gru and alstm
learn the planted signal (test IC >= 0.05); with labels shuffled across instruments the IC falls to noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from evaluation.signal import signal_analysis
from models.config import get_model_config
from models.scoring import predict
from models.training import train_model
from pipeline.profiles import profile_overrides
from processing.samples import SampleSet
from warehouse.ingest import ingest_bars, sync_calendar, sync_membership
from warehouse.sources import SyntheticSource
from warehouse.store import Warehouse
from workflow.features import build_feature_window
from workflow.handlers import fit_and_store_handler
from workflow.segments import default_segments
from workflow.training import build_model_samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory):
    wh = Warehouse(Path(tmp_path_factory.mktemp("signal")) / "wh.duckdb")
    source = SyntheticSource()
    cal = source.calendar()
    sync_calendar(source, wh)
    sync_membership(source, wh, None, source.default_benchmark())
    ingest_bars(source, wh, cal[0], cal[-1], None, source.default_benchmark())
    for feature_set in ("alpha360", "label"):
        build_feature_window(wh, feature_set, cal[0], cal[-1])
    segments = default_segments(cal)
    fit = fit_and_store_handler(wh, "alpha360_rnn", segments)
    return wh, segments, fit.fitted


def _test_ic(model, test: SampleSet) -> float:
    scores = predict(model, test, device="cpu", batch_size=4096)
    keys = {"instrument": test.instruments.astype(str), "date": test.dates.astype("datetime64[D]")}
    _, metrics = signal_analysis(pl.DataFrame({**keys, "score": scores}), pl.DataFrame({**keys, "LABEL0": test.labels}))
    return metrics["ic"]


@pytest.mark.parametrize("name", ["lstm", "gru", "alstm"])
def test_quick_profile_learns_planted_signal(market, name: str) -> None:
    wh, segments, fitted = market
    config = get_model_config(name, **profile_overrides("quick", name))
    samples = build_model_samples(
        wh, config, fitted, {"train": segments.train, "valid": segments.valid, "test": segments.test}
    )
    result = train_model(config, samples["train"], samples["valid"], device="cpu")
    assert _test_ic(result.model, samples["test"]) >= 0.05


def test_shuffled_labels_give_noise(market) -> None:
    wh, segments, fitted = market
    config = get_model_config("lstm", **profile_overrides("quick", "lstm"))
    samples = build_model_samples(
        wh, config, fitted, {"train": segments.train, "valid": segments.valid, "test": segments.test}
    )
    rng = np.random.default_rng(0)

    def shuffled(s: SampleSet) -> SampleSet:
        # Permute labels across instruments within each day: any IC left would come from a leak.
        order = np.lexsort((rng.random(s.n_samples), s.dates))
        by_day = np.argsort(s.dates, kind="stable")
        labels = s.labels.copy()
        labels[by_day] = s.labels[order]
        return SampleSet(s.rows, s.windows, labels, s.dates, s.instruments, s.layout, s.d_feat, s.feature_names)

    result = train_model(config, shuffled(samples["train"]), shuffled(samples["valid"]), device="cpu")
    # Scored against shuffled test labels too: with no link between inputs and labels anywhere, only a leak of
    # labels into the inputs could leave an IC. Noise here: about 0.005 (250 days of ~180 names).
    assert abs(_test_ic(result.model, shuffled(samples["test"]))) < 0.02
