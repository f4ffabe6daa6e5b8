"""Which scores the evaluation reads: walk-forward versions, and only the configured universe's members.

A warehouse first filled from one source (the synthetic market of `make run`) and then from another (CSI300)
still holds the first run's models and predictions; their instruments must not enter the second run's signal
analysis or take places in its backtest's top k.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from warehouse.store import Warehouse
from workflow.evaluation import out_of_sample_scores

D = dt.date


def _models(rows: list[tuple[str, str, dt.datetime, dt.date]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"model": pl.Utf8, "model_version": pl.Utf8, "trained_at": pl.Datetime("us"), "valid_end": pl.Date},
        orient="row",
    )


def test_scores_are_walk_forward_and_of_members_only(tmp_path):
    wh = Warehouse(tmp_path / "warehouse.duckdb")
    wh.replace(
        "instruments",
        pl.DataFrame(
            {
                "universe": ["csi300"] * 3,
                "instrument": ["AAA", "BBB", "CCC"],
                "start_date": [D(2020, 1, 1), D(2020, 1, 1), D(2020, 1, 3)],  # CCC joins on the 3rd
                "end_date": [D(2020, 12, 31), D(2020, 1, 2), D(2020, 12, 31)],  # BBB leaves after the 2nd
            }
        ),
    )
    wh.replace(
        "models",
        _models(
            [
                ("lstm", "synthetic", dt.datetime(2026, 1, 1, 10), D(2019, 6, 30)),  # an earlier run, other source
                ("lstm", "v1", dt.datetime(2026, 1, 1, 11), D(2019, 12, 31)),
                ("lstm", "v2", dt.datetime(2026, 1, 1, 12), D(2020, 1, 2)),  # retrained: scores from the 3rd on
            ]
        ),
    )
    days = [D(2020, 1, 2), D(2020, 1, 3)]
    rows = [("synthetic", inst, d, 9.0) for inst in ("S001", "AAA") for d in days]
    rows += [(v, i, d, 1.0 if v == "v1" else 2.0) for v in ("v1", "v2") for i in ("AAA", "BBB", "CCC") for d in days]
    wh.replace(
        "predictions",
        pl.DataFrame(
            [("lstm", *r) for r in rows],
            schema={
                "model": pl.Utf8,
                "model_version": pl.Utf8,
                "instrument": pl.Utf8,
                "date": pl.Date,
                "score": pl.Float64,
            },
            orient="row",
        ),  # fmt: skip
    )
    got = out_of_sample_scores(wh, "lstm", D(2020, 1, 1), D(2020, 12, 31))
    assert got.select("instrument", "date", "model_version", "score").rows() == [
        ("AAA", D(2020, 1, 2), "v1", 1.0),  # v2's validation ran to the 2nd: its score of that day is in-sample
        ("BBB", D(2020, 1, 2), "v1", 1.0),
        ("AAA", D(2020, 1, 3), "v2", 2.0),
        ("CCC", D(2020, 1, 3), "v2", 2.0),  # BBB is no member on the 3rd, CCC not yet on the 2nd
    ]  # and S001, scored by the other source's model, never
