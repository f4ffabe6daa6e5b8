"""Handler configs, the DK_R / DK_I / DK_L pipeline, state round trip and errors."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from processing.config import ALPHA158_20, HANDLER_CONFIGS, HandlerConfig, ProcessorSpec, get_handler_config
from processing.handler import FittedHandler, fit_handler
from tests.processing.helpers import LABEL, random_frames

FIT = ("2022-01-03", "2022-01-31")


def test_named_configs_match_qlib_defaults_and_yaml() -> None:
    assert set(HANDLER_CONFIGS) == {"alpha158", "alpha360", "alpha360_rnn", "alpha158_20"}
    a158 = get_handler_config("alpha158")
    assert a158.infer == () and [s.name for s in a158.learn] == ["DropnaLabel", "CSZScoreNorm"]
    assert a158.learn[1].kwargs == {"fields_group": "label"}
    a360 = get_handler_config("alpha360")
    assert [(s.name, dict(s.kwargs)) for s in a360.infer] == [("ProcessInf", {}), ("ZScoreNorm", {}), ("Fillna", {})]
    rnn = get_handler_config("alpha360_rnn")
    assert [(s.name, dict(s.kwargs)) for s in rnn.infer] == [
        ("RobustZScoreNorm", {"fields_group": "feature", "clip_outlier": True}),
        ("Fillna", {"fields_group": "feature"}),
    ]
    assert [(s.name, dict(s.kwargs)) for s in rnn.learn] == [
        ("DropnaLabel", {}),
        ("CSRankNorm", {"fields_group": "label"}),
    ]
    ts = get_handler_config("alpha158_20")
    assert ts.infer[0].name == "FilterCol" and ts.infer[0].kwargs["col_list"] == list(ALPHA158_20)
    assert ts.infer[1:] == rnn.infer and ts.learn == rnn.learn
    assert len(set(ALPHA158_20)) == 20
    for cfg in HANDLER_CONFIGS.values():
        assert cfg.process_type == "append"
        assert HandlerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_config_errors_list_valid_names() -> None:
    with pytest.raises(ValueError, match="valid names.*alpha158_20"):
        get_handler_config("alpha999")
    with pytest.raises(ValueError, match="valid processors.*RobustZScoreNorm"):
        HandlerConfig(name="x", feature_set="alpha158", infer=({"class": "Normalise"},))
    with pytest.raises(ValueError, match="DropnaLabel is for learning only"):
        HandlerConfig(name="x", feature_set="alpha158", infer=("DropnaLabel",))
    with pytest.raises(ValueError, match="process_type='sideways' is not one of"):
        HandlerConfig(name="x", feature_set="alpha158", process_type="sideways")
    with pytest.raises(ValueError, match=r"processor ZScoreNorm: \['fit_start_time'\] come from fit_handler's fit"):
        ProcessorSpec("ZScoreNorm", {"fit_start_time": "2020-01-01"})
    with pytest.raises(ValueError, match=r"handler config has unknown keys \['colour'\]"):
        HandlerConfig.from_dict({"name": "x", "feature_set": "alpha158", "colour": 1})


def test_modes_raw_infer_learn() -> None:
    feats, labels = random_frames(seed=3)
    h = fit_handler("alpha360_rnn", feats, labels, *FIT)
    raw = h.transform(feats, labels, mode="raw")
    infer = h.transform(feats, labels, mode="infer")
    learn = h.transform(feats, labels, mode="learn")
    assert raw.n_rows == infer.n_rows == feats.height
    assert np.isnan(raw.features).any() and not np.isnan(infer.features).any()  # Fillna(feature)
    assert np.array_equal(raw.labels, infer.labels, equal_nan=True)  # infer only touches the features
    assert learn.n_rows == int((~np.isnan(raw.labels[:, 0])).sum())  # DropnaLabel
    assert np.abs(learn.labels).max() <= 0.5 * 3.46 + 1e-6  # CSRankNorm
    keep = ~np.isnan(raw.labels[:, 0])
    assert np.array_equal(learn.features, infer.features[keep])
    with pytest.raises(ValueError, match="mode='test' is not one of"):
        h.transform(feats, labels, mode="test")


def test_fit_only_uses_the_fit_window() -> None:
    feats, labels = random_frames(seed=4)
    h1 = fit_handler("alpha360_rnn", feats, labels, *FIT)
    later = feats.with_columns(
        pl.when(pl.col("date") > pl.date(2022, 1, 31)).then(pl.col("F0") * 100).otherwise(pl.col("F0")).alias("F0")
    )
    h2 = fit_handler("alpha360_rnn", later, labels, *FIT)
    assert h1.state() == h2.state()


def test_state_round_trip_gives_identical_transforms() -> None:
    feats, labels = random_frames(seed=5)
    cfg = HandlerConfig(
        name="mixed",
        feature_set="alpha158",
        shared=("ProcessInf",),
        infer=(
            {"class": "FilterCol", "kwargs": {"col_list": ["F1", "F3", "F4"]}},
            {"class": "ZScoreNorm", "kwargs": {"fields_group": "feature"}},
            {"class": "MinMaxNorm", "kwargs": {"fields_group": "feature"}},
            {"class": "Fillna", "kwargs": {"fields_group": "feature"}},
        ),
        learn=("DropnaLabel", {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label", "method": "robust"}}),
    )
    h = fit_handler(cfg, feats, labels, *FIT)
    state = json.loads(json.dumps(h.state(), allow_nan=False))
    h2 = FittedHandler.from_state(state)
    assert h2.state() == h.state()
    assert h.output_features == ["F1", "F3", "F4"]
    for mode in ("infer", "learn"):
        a, b = h.transform(feats, labels, mode), h2.transform(feats, labels, mode)
        assert np.array_equal(a.features, b.features, equal_nan=True)
        assert np.array_equal(a.labels, b.labels, equal_nan=True)
    bad = dict(state, processors={**state["processors"], "learn": state["processors"]["learn"][:1]})
    with pytest.raises(ValueError, match=r"handler state: learn processors \[.*\] do not match the config's \["):
        FittedHandler.from_state(bad)


def test_independent_learns_from_shared_output() -> None:
    feats, labels = random_frames(seed=6)
    cfg = HandlerConfig(
        name="ind",
        feature_set="alpha158",
        infer=({"class": "Fillna", "kwargs": {"fields_group": "feature", "fill_value": 9}},),
        learn=("DropnaLabel",),
        process_type="independent",
    )
    h = fit_handler(cfg, feats, labels, *FIT)
    learn = h.transform(feats, labels, "learn")
    assert np.isnan(learn.features).any() and not (learn.features == 9).any()
    data = h.process(feats, labels)
    assert (data.infer.features == 9).any()
    assert np.array_equal(data.learn().features, learn.features, equal_nan=True)


def test_process_matches_transform_and_keeps_raw_labels() -> None:
    feats, labels = random_frames(seed=7)
    h = fit_handler("alpha360_rnn", feats, labels, *FIT)
    data = h.process(feats, labels)
    infer = h.transform(feats, labels, "infer")
    assert np.array_equal(data.infer.features, infer.features)
    part = data.learn("2022-01-10", "2022-01-20")
    full = h.transform(feats, labels, "learn", start="2022-01-10", end="2022-01-20")
    assert np.array_equal(part.labels, full.labels) and np.array_equal(part.features, full.features)
    raw = h.transform(feats, labels, "raw")
    assert np.array_equal(data.raw_labels, raw.labels[:, 0], equal_nan=True)


def test_handler_range_and_membership_apply() -> None:
    feats, labels = random_frames(seed=8)
    membership = pl.DataFrame(
        {"instrument": ["SH600001"], "start_date": [dt.date(2022, 1, 10)], "end_date": [dt.date(2022, 1, 20)]}
    )
    h = fit_handler("alpha158", feats, labels, "2022-01-03", "2022-02-28", membership=membership, start="2022-01-12")
    out = h.transform(feats, labels, "raw", membership=membership, start="2022-01-12")
    assert set(out.instruments().tolist()) == {"SH600001"}
    assert str(out.dates.min()) >= "2022-01-12" and str(out.dates.max()) <= "2022-01-20"


def test_fit_errors() -> None:
    feats, labels = random_frames(seed=9)
    with pytest.raises(ValueError, match="no rows in the fit window"):
        fit_handler("alpha360_rnn", feats, labels, "2030-01-01", "2030-12-31")
    with pytest.raises(ValueError, match="before it starts"):
        fit_handler("alpha360_rnn", feats, labels, "2022-02-01", "2022-01-01")
    with pytest.raises(ValueError, match="FilterCol"):
        fit_handler("alpha158_20", feats, labels, *FIT)  # F0..F4 are not the 20 features
    cfg = HandlerConfig(name="x", feature_set="alpha158", feature_columns=("F0", "G7"))
    with pytest.raises(ValueError, match="G7"):
        fit_handler(cfg, feats, labels, *FIT)


def test_summary_and_stats_frame() -> None:
    feats, labels = random_frames(seed=10)
    h = fit_handler("alpha360_rnn", feats, labels, *FIT)
    text = h.summary()
    assert "RobustZScoreNorm" in text and "CSRankNorm" in text and "2022-01-31" in text
    assert "| 0:RobustZScoreNorm | F0 |" in text
    stats = h.stats_frame()
    assert stats.height == 2 * 5 and set(stats["stat"]) == {"median", "scale"}
    assert LABEL not in stats["column"].to_list()
