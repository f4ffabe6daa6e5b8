"""The scheduled retraining job runs end to end: rolling segments ending at the latest labelled day."""

from __future__ import annotations

from pathlib import Path

from pipeline.definitions import build_definitions
from tests.helpers import WHOLE_PIPELINE, materialize_selection, range_tags, settings_for
from warehouse.store import Warehouse


def test_daily_retrain_job_retrains_on_a_rolling_window(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, profile="smoke")
    # History first (what `make run` or a backfill leaves), then the job the schedule launches.
    assert materialize_selection(settings, WHOLE_PIPELINE, tags=range_tags("2020-01-02", "2020-12-31")).success
    wh = Warehouse(settings.warehouse)
    before = wh.query("select model, model_version, valid_end from models")
    job = build_definitions(settings).resolve_job_def("daily_retrain")
    result = job.execute_in_process(tags=range_tags("2020-12-17", "2020-12-31"))
    assert result.success
    models = wh.query(
        "select model, valid_end from models "
        "qualify row_number() over (partition by model order by trained_at desc) = 1"
    )
    latest_labelled = wh.query('select max(date) from labels where "LABEL0" is not null').item()
    assert set(models["valid_end"].to_list()) == {latest_labelled}
    assert (before["valid_end"] < latest_labelled).all()
    # Both versions' scores are kept: the walk-forward evaluation picks per day.
    versions = wh.query("select model, count(distinct model_version) as n from predictions group by model")
    assert (versions["n"] == 2).all()
