"""Our processors, handler pipelines and dataset views against pyqlib 0.9.7 on a random panel.

The fixtures come from scripts/make_processing_fixtures.py (Qlib's own classes); this runs without pyqlib.
"""

from __future__ import annotations

import numpy as np
import pytest

from processing.config import HandlerConfig, get_handler_config
from processing.dataset import build_segments
from processing.handler import fit_handler
from processing.panel import panel_from_frames
from processing.processors import make_processor
from processing.serial import decode_floats
from tests.processing.helpers import (
    LABEL,
    assert_frames_close,
    fixture_frame,
    fixture_inputs,
    fixture_npz,
    meta,
)

PROC_CASES = sorted(meta()["processors"])
HANDLER_CASES = sorted(meta()["handlers"])


def _member_panel():
    features, labels, membership = fixture_inputs()
    return panel_from_frames(features, labels, label_columns=(LABEL,), membership=membership)


def _handler_config(case: str) -> HandlerConfig:
    spec = meta()["handlers"][case]
    if case in ("alpha158", "alpha360", "alpha360_rnn", "alpha158_20"):
        cfg = get_handler_config(case)
        assert cfg.to_dict()["infer"] == spec["infer"] and cfg.to_dict()["learn"] == spec["learn"]
        return cfg
    return HandlerConfig(name=case, feature_set="alpha158", **spec)


def _fit(case: str):
    features, labels, membership = fixture_inputs()
    fit, rng = meta()["fit"], meta()["handler_range"]
    handler = fit_handler(_handler_config(case), features, labels, fit[0], fit[1], membership, start=rng[0], end=rng[1])
    return handler, (features, labels, membership, rng)


@pytest.mark.parametrize("case", PROC_CASES)
def test_processor_matches_qlib(case: str) -> None:
    spec = meta()["processors"][case]
    proc = make_processor(spec["class"], **spec["kwargs"])
    panel = _member_panel()
    proc.fit(panel)
    out = proc.transform(panel)
    assert_frames_close(out.to_frame(), fixture_frame(f"proc_{case}"))
    fitted = proc.fitted_state()
    if spec["stats"]:
        # Qlib's names: mean_train/std_train (ZScore: mean/std, Robust: median/scale), min_val/max_val.
        ours = fitted["stats"]["feature"] if set(fitted["stats"]) == {"feature"} else None
        if ours is not None:
            qlib_names = [k for k in ("mean_train", "std_train", "min_val", "max_val") if k in spec["stats"]]
            for q, o in zip(qlib_names, proc.stat_names, strict=True):
                theirs = decode_floats(spec["stats"][q]).astype(np.float64)
                np.testing.assert_allclose(decode_floats(ours[o]).astype(np.float64), theirs, rtol=2e-6, equal_nan=True)


@pytest.mark.parametrize("case", HANDLER_CASES)
@pytest.mark.parametrize("mode", ["infer", "learn"])
def test_handler_matches_qlib(case: str, mode: str) -> None:
    handler, (features, labels, membership, rng) = _fit(case)
    out = handler.transform(features, labels, mode=mode, membership=membership, start=rng[0], end=rng[1])
    assert_frames_close(out.to_frame(), fixture_frame(f"handler_{case}_{mode}"))


@pytest.mark.parametrize("case", ["alpha360_rnn", "alpha158_20"])
def test_flat_view_matches_datasetH(case: str) -> None:
    handler, (features, labels, membership, rng) = _fit(case)
    d_feat = 5 if case == "alpha360_rnn" else None  # the random panel has 25 columns, not 360
    sets = build_segments(
        handler,
        features,
        labels,
        meta()["segments"],
        "flat",
        membership=membership,
        d_feat=d_feat,
        start=rng[0],
        end=rng[1],
    )
    for seg, ss in sets.items():
        ref = fixture_npz(f"ds_{case}_flat_{seg}")
        np.testing.assert_array_equal(ss.dates, ref["dates"])
        np.testing.assert_array_equal(ss.instruments, ref["instruments"])
        np.testing.assert_allclose(ss.rows[ss.windows[:, 0]], ref["x"], rtol=1e-6, atol=1e-6, equal_nan=True)
        np.testing.assert_allclose(ss.labels, ref["label"], rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("case", ["alpha360_rnn", "alpha158_20"])
@pytest.mark.parametrize("fill", ["none", "ffill", "ffill+bfill"])
def test_sequence_view_matches_tsdatasampler(case: str, fill: str) -> None:
    handler, (features, labels, membership, rng) = _fit(case)
    sets = build_segments(
        handler,
        features,
        labels,
        meta()["segments"],
        "sequence",
        step_len=meta()["step_len"],
        membership=membership,
        fillna_type=fill,
        start=rng[0],
        end=rng[1],
    )
    for seg, ss in sets.items():
        ref = fixture_npz(f"ds_{case}_seq_{seg}_{fill.replace('+', '_')}")
        np.testing.assert_array_equal(ss.dates, ref["dates"])
        np.testing.assert_array_equal(ss.instruments, ref["instruments"])
        np.testing.assert_allclose(ss.dense_inputs(), ref["x"], rtol=1e-6, atol=1e-6, equal_nan=True)
        np.testing.assert_allclose(ss.labels, ref["label"], rtol=1e-6, atol=1e-6, equal_nan=True)
