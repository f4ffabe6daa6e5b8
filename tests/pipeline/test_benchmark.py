"""The benchmark table through real Dagster materializations on a tiny synthetic market: runs per seed, the
mean ± std aggregate, idempotent reruns, and a reference implementation's scores evaluated the same way."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from evaluation.benchmark_table import aggregate, results_markdown
from pipeline.cli import upstream_selection
from pipeline.resources import SegmentsResource
from tests.helpers import embedded_png, materialize_selection, range_tags, settings_for
from warehouse.feature_store import trading_days
from warehouse.store import Warehouse
from workflow.benchmark import BenchmarkPlan, evaluate_reference, run_benchmark


def run_benchmark_asset(settings, **config):
    import dagster as dg

    from pipeline.definitions import build_definitions

    defs = build_definitions(settings)
    return dg.materialize(
        assets=list(defs.assets or []),
        selection=dg.AssetSelection.assets("benchmark_results"),
        resources=defs.resources,
        run_config={"ops": {"benchmark_results": {"config": config}}},
    )


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("benchmark")
    settings = settings_for(tmp, profile="smoke")
    assert materialize_selection(settings, upstream_selection(), tags=range_tags("2020-01-02", "2020-12-31")).success
    result = run_benchmark_asset(settings, models=["gru", "gru_ts"], seeds=[0, 1], max_epochs=1, threads=1)
    assert result.success
    return settings, result, Warehouse(settings.warehouse)


def test_one_run_per_model_and_seed_and_mean_std_per_model(bench) -> None:
    settings, result, wh = bench
    runs = wh.query("select * from benchmark_runs order by model, seed")
    assert runs.select("model", "seed").rows() == [("gru", 0), ("gru", 1), ("gru_ts", 0), ("gru_ts", 1)]
    assert set(runs["implementation"]) == {"alphaflow"} and set(runs["n_epochs"]) == {1}
    assert (runs["epochs_run"] == 1).all() and (runs["device"] == "cpu").all() and (runs["threads"] == 1).all()
    for col in ("ic", "icir", "rank_ic", "rank_icir", "annualized_return", "information_ratio", "max_drawdown"):
        assert runs[col].is_finite().all(), col
    assert (runs["max_drawdown"] <= 0).all()
    # Different seeds train different networks.
    assert runs.filter(pl.col("model") == "gru")["ic"].n_unique() == 2

    results = wh.query("select * from benchmark_results order by model")
    assert results["model"].to_list() == ["gru", "gru_ts"] and (results["n_seeds"] == 2).all()
    gru = runs.filter(pl.col("model") == "gru")
    row = results.row(0, named=True)
    assert row["ic_mean"] == pytest.approx(float(np.mean(gru["ic"].to_numpy())))
    assert row["ic_std"] == pytest.approx(float(np.std(gru["ic"].to_numpy(), ddof=1)))
    assert row["train_s_mean"] == pytest.approx(float(np.mean(gru["train_s"].to_numpy())))

    # Every test day of every run has its scores stored, under the run's key.
    scores = wh.query("select model, seed, count(*) n, min(date) lo, max(date) hi from benchmark_scores group by all")
    seg = SegmentsResource().resolve(trading_days(wh))
    assert scores.height == 4 and (scores["lo"] >= seg.test[0]).all() and (scores["hi"] <= seg.test[1]).all()
    assert dict(zip(runs["model"] + runs["seed"].cast(str), runs["n_test"], strict=True)) == dict(
        zip(scores["model"] + scores["seed"].cast(str), scores["n"], strict=True)
    )

    meta = result.asset_materializations_for_node("benchmark_results")[0].metadata
    table = meta["results"].value
    assert "| gru | Alpha360 | alphaflow |" in table and "±" in table and "| gru_ts | Alpha158 (20 cols) |" in table
    assert meta["n_runs"].value == 4
    assert embedded_png(meta["chart"].value)
    mean_ic = meta["mean_ic"].value.splitlines()[2:]  # past the header and the rule
    assert [line.split(" | ")[0].strip("| ") for line in mean_ic] == results["model"].to_list()


def test_rerunning_a_model_replaces_its_runs(bench) -> None:
    settings, _, wh = bench
    before = wh.query("select model, seed, ic from benchmark_runs order by model, seed")
    assert run_benchmark_asset(settings, models=["gru"], seeds=[0], max_epochs=1, threads=1).success
    after = wh.query("select model, seed, ic from benchmark_runs order by model, seed")
    assert after.height == before.height
    # Seeded on one thread: the rerun reproduces the run exactly.
    assert after.equals(before)
    assert (
        wh.query("select count(*) from benchmark_scores where model = 'gru' and seed = 0").item()
        == wh.query("select n_test from benchmark_runs where model = 'gru' and seed = 0").item()
    )


def test_reference_scores_go_through_the_same_evaluation(bench, tmp_path: Path) -> None:
    settings, _, wh = bench
    ours = wh.query("select * from benchmark_runs where model = 'gru' and seed = 1").row(0, named=True)
    scores = wh.query("select instrument, date, score from benchmark_scores where model = 'gru' and seed = 1")
    scores.write_parquet(tmp_path / "gru_seed1.parquet")
    record = {
        "model": "gru",
        "seed": 1,
        "implementation": "qlib test",
        "params": {"n_epochs": 1},
        "epochs_run": 1,
        "best_epoch": 1,
        "train_s": 10.0,
        "predict_s": 1.0,
        "device": "cpu",
        "threads": 1,
        "finished_at": "2026-01-01T00:00:00",
        "scores": "gru_seed1.parquet",
    }
    (tmp_path / "runs.jsonl").write_text(json.dumps(record) + "\n")
    seg = SegmentsResource().resolve(trading_days(wh))
    (row,) = evaluate_reference(wh, tmp_path, seg, "SYNIDX")
    for col in ("ic", "icir", "rank_ic", "rank_icir", "annualized_return", "information_ratio", "max_drawdown"):
        assert row[col] == pytest.approx(ours[col], rel=1e-12, abs=1e-12), col
    results = wh.query("select * from benchmark_results where implementation = 'qlib test'")
    assert results.height == 1 and results["n_seeds"].item() == 1 and results["ic_std"].item() == 0.0
    assert "qlib test" in results_markdown(wh.query("select * from benchmark_results"))
    wh.query("select 1")  # the warehouse stays readable
    with Warehouse(settings.warehouse).connect() as con:
        con.execute("delete from benchmark_runs where implementation = 'qlib test'")
        con.execute("delete from benchmark_scores where implementation = 'qlib test'")


def test_bad_reference_and_plan_inputs_are_named(bench, tmp_path: Path) -> None:
    _, _, wh = bench
    seg = SegmentsResource().resolve(trading_days(wh))
    with pytest.raises(ValueError, match=re.escape(f"Qlib reference directory {tmp_path}: no runs.jsonl")):
        evaluate_reference(wh, tmp_path, seg, None)
    (tmp_path / "runs.jsonl").write_text('{"model": "gru"}\n')
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'runs.jsonl'}, line 1: not a run record")):
        evaluate_reference(wh, tmp_path, seg, None)
    (tmp_path / "runs.jsonl").write_text('{"model": "gru", "scores": "missing.parquet"}\n')
    with pytest.raises(ValueError, match=re.escape(f"line 1: score file {tmp_path / 'missing.parquet'} is missing")):
        evaluate_reference(wh, tmp_path, seg, None)
    with pytest.raises(ValueError, match="unknown model config 'informer'"):
        BenchmarkPlan(models=("informer",), seeds=(0,))
    with pytest.raises(ValueError, match="benchmark gats: it starts from a trained 'lstm'; put lstm before it"):
        run_benchmark(wh, BenchmarkPlan(models=("gru", "gats"), seeds=(0,), max_epochs=1), seg, None)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        BenchmarkPlan(models=("gru",), seeds=(0, 0))


def test_aggregate_of_one_seed_has_zero_std() -> None:
    runs = pl.DataFrame(
        {
            "implementation": ["a"],
            "model": ["gru"],
            "dataset": ["Alpha360"],
            "n_epochs": [1],
            "device": ["cpu"],
            "threads": [1],
            "seed": [0],
            **{m: [0.5] for m in ("ic", "icir", "rank_ic", "rank_icir")},
            **{m: [0.1] for m in ("annualized_return", "information_ratio", "max_drawdown")},
            "train_s": [3.0],
            "epochs_run": [1],
            "test_start": [None],
            "test_end": [None],
            "finished_at": [None],
        }
    )
    out = aggregate(runs)
    assert out["ic_mean"].item() == 0.5 and out["ic_std"].item() == 0.0 and out["seeds"].item() == "0"


def test_command_line_uses_the_cpu_reduced_defaults(bench, monkeypatch, tmp_path: Path, capsys) -> None:
    from pipeline.cli import main

    settings, _, wh = bench
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIPELINE_WAREHOUSE", settings.warehouse)
    monkeypatch.setenv("PIPELINE_SOURCE", settings.source)
    monkeypatch.setenv("PIPELINE_DEVICE", "cpu")
    monkeypatch.setenv("PIPELINE_PROFILE", "smoke")
    assert main(["benchmark", "--models", "alstm_ts", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "seeds [0, 1]; epochs capped at 1; device cpu" in out
    runs = wh.query("select seed, n_epochs, epochs_run from benchmark_runs where model = 'alstm_ts' order by seed")
    assert runs.rows() == [(0, 1, 1), (1, 1, 1)]
    assert "| alstm_ts | Alpha158 (20 cols) | alphaflow |" in out
    with pytest.raises(SystemExit, match="--seeds must be comma-separated integers"):
        main(["benchmark", "--models", "alstm_ts", "--seeds", "0,x"])


def test_benchmark_stays_out_of_the_daily_jobs(bench) -> None:
    from pipeline.definitions import build_definitions

    settings, _, _ = bench
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    assert "benchmark_results" not in {
        k.to_user_string() for k in dg_selection("* and not group:benchmark").resolve(graph)
    }
    for job in ("daily_update", "daily_retrain"):
        keys = {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.executable_asset_keys}
        assert "benchmark_results" not in keys and "predictions_gru" in keys, job
    keys = {k.to_user_string() for k in defs.resolve_job_def("benchmark").asset_layer.executable_asset_keys}
    assert keys == {"benchmark_results"}


def dg_selection(text: str):
    import dagster as dg

    return dg.AssetSelection.from_string(text)


FAKE_QLIB = '''#!{python}
"""Stands in for a Python with pyqlib: records its arguments and writes the reference files
bench/qlib_reference.py would, with the scores of our own stored run of the same model and seed."""
import json, sys
from pathlib import Path
import duckdb
args = sys.argv[2:]
opt = dict(zip(args[::2], args[1::2]))
Path(opt["--out"]).mkdir(parents=True, exist_ok=True)
(Path(opt["--out"]) / "argv.json").write_text(json.dumps(sys.argv[1:]))
con = duckdb.connect({warehouse!r}, read_only=True)
with open(Path(opt["--out"]) / "runs.jsonl", "w") as fh:
    for model in opt["--models"].split(","):
        for seed in map(int, opt["--seeds"].split(",")):
            name = f"{{model}}_seed{{seed}}.parquet"
            con.execute(
                "copy (select instrument, date, score from benchmark_scores where implementation = 'alphaflow' "
                f"and model = '{{model}}' and seed = {{seed}} and n_epochs = 1) to '{{Path(opt['--out']) / name}}'"
            )
            fh.write(json.dumps({{"model": model, "seed": seed, "implementation": "qlib fake",
                "params": {{"n_epochs": int(opt.get("--max-epochs", 200))}}, "epochs_run": 1, "best_epoch": 0,
                "train_s": 1.0, "predict_s": 1.0, "device": "cpu", "threads": int(opt["--threads"]),
                "finished_at": "2026-01-01T00:00:00", "scores": name}}) + "\\n")
'''


def test_command_line_runs_the_qlib_reference_with_the_same_plan(bench, monkeypatch, tmp_path: Path, capsys) -> None:
    import os
    import sys

    from pipeline.cli import main

    settings, _, wh = bench
    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_QLIB.format(python=sys.executable, warehouse=settings.warehouse))
    os.chmod(fake, 0o755)
    ref = tmp_path / "ref"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIPELINE_WAREHOUSE", settings.warehouse)
    monkeypatch.setenv("PIPELINE_SOURCE", settings.source)
    monkeypatch.setenv("PIPELINE_DEVICE", "cpu")
    args = ["benchmark", "--models", "gru", "--seeds", "0,1", "--max-epochs", "1", "--threads", "1", "--skip-training"]
    # no --qlib-models: Qlib's side trains the same configurations as ours
    assert main([*args, "--qlib-python", str(fake), "--qlib-reference", str(ref)]) == 0
    argv = json.loads((ref / "argv.json").read_text())
    seg = SegmentsResource().resolve(trading_days(wh))
    assert argv[0].endswith("bench/qlib_reference.py")
    opts = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert opts["--seeds"] == "0,1" and opts["--max-epochs"] == "1" and opts["--models"] == "gru"
    assert opts["--segments"] == ",".join(f"{a}:{b}" for a, b in (seg.train, seg.valid, seg.test))
    ours = wh.query("select seed, ic, rank_ic from benchmark_runs where implementation = 'alphaflow' "
                    "and model = 'gru' order by seed")  # fmt: skip
    theirs = wh.query("select seed, ic, rank_ic from benchmark_runs where implementation = 'qlib fake' order by seed")
    assert theirs["seed"].to_list() == ours["seed"].to_list() == [0, 1]
    for col in ("ic", "rank_ic"):
        assert np.allclose(theirs[col].to_numpy(), ours[col].to_numpy(), rtol=1e-12, atol=1e-12), col
    out = capsys.readouterr().out
    # The side-by-side table: our mean IC / the reference's, per model run by both with the same budget.
    ic = float(ours["ic"].mean())
    assert f"| gru | 1 | {ic:.4f} / {ic:.4f} |" in out and "| qlib fake |" in out
    with Warehouse(settings.warehouse).connect() as con:
        con.execute("delete from benchmark_runs where implementation = 'qlib fake'")
        con.execute("delete from benchmark_scores where implementation = 'qlib fake'")
