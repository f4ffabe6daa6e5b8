"""The Launchpad form and the command-line flags of a setting come from its dataclass: same fields, same
defaults, and parsed values that build the same object."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from evaluation.backtest import BACKTEST_WINDOW, BacktestConfig
from pipeline.cli import build_parser
from pipeline.forms import add_flags, config_form, from_flags


def _strategy_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(BacktestConfig) if f.name not in BACKTEST_WINDOW]


def test_the_backtest_form_has_every_setting_with_its_default() -> None:
    form = config_form("Form", BacktestConfig(), exclude=BACKTEST_WINDOW)
    assert list(form.model_fields) == _strategy_fields()
    assert BacktestConfig(**form().model_dump()) == BacktestConfig()
    assert form.model_fields["n_drop"].description == "names replaced each day"
    edited = form(topk=30, limit_threshold=None)
    assert BacktestConfig(**edited.model_dump()) == BacktestConfig(topk=30, limit_threshold=None)


def test_the_backtest_flags_parse_to_the_same_config() -> None:
    parser = build_parser()
    args = parser.parse_args(["backtest", "--scores", "s.parquet"])
    assert from_flags(BacktestConfig, args, BacktestConfig(), exclude=BACKTEST_WINDOW) == BacktestConfig()
    args = parser.parse_args(
        ["backtest", "--scores", "s.parquet", "--topk", "30", "--limit-threshold", "none",
         "--no-forbid-all-trade-at-limit", "--trade-unit", "None", "--open-cost", "0.001"]
    )  # fmt: skip
    got = from_flags(BacktestConfig, args, BacktestConfig(), exclude=BACKTEST_WINDOW)
    assert got == BacktestConfig(
        topk=30, limit_threshold=None, forbid_all_trade_at_limit=False, trade_unit=None, open_cost=0.001
    )


def test_a_bad_flag_value_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="t")
    add_flags(parser, BacktestConfig(), exclude=BACKTEST_WINDOW)
    with pytest.raises(SystemExit):
        parser.parse_args(["--topk", "many"])
    assert "--topk must be int, got 'many'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--topk", "none"])  # topk does not allow None
    assert "--topk must be int, got 'none'" in capsys.readouterr().err
