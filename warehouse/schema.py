"""Warehouse tables. Fixed-shape tables are declared here; wide or result tables (features, evaluation) take
their columns from the first frame written, with the key given by the writer."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class TableSpec:
    name: str
    ddl: str
    key: tuple[str, ...]


def _spec(name: str, columns: str, key: tuple[str, ...]) -> TableSpec:
    pk = f", primary key ({', '.join(key)})" if key else ""
    return TableSpec(name, f'create table if not exists "{name}" ({columns}{pk})', key)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        _spec("calendar", "date date not null", ("date",)),
        _spec(
            "instruments",
            "universe varchar not null, instrument varchar not null, start_date date not null, end_date date not null",
            ("universe", "instrument", "start_date"),
        ),
        _spec(
            "bars",
            "instrument varchar not null, date date not null, open double, high double, low double, "
            "close double, volume double, factor double, change double, vwap double",
            ("instrument", "date"),
        ),
        _spec(
            "handlers",
            "handler varchar not null, handler_version varchar not null, fitted_at timestamp, "
            "fit_start date, fit_end date, feature_set varchar, n_rows bigint, state json",
            ("handler",),
        ),
        _spec(
            "models",
            "model varchar not null, model_version varchar not null, trained_at timestamp, path varchar, "
            "device varchar, handler varchar, handler_version varchar, "
            "train_start date, train_end date, valid_start date, valid_end date, test_start date, test_end date, "
            "best_epoch integer, epochs_run integer, best_valid_score double, wall_time_s double, "
            "samples_per_s double, n_parameters bigint, config json, base_model varchar, base_model_version varchar",
            ("model", "model_version"),
        ),
        _spec(
            "predictions",
            "model varchar not null, model_version varchar not null, instrument varchar not null, "
            "date date not null, score double",
            # Every version's scores are kept: a retrained model never overwrites the out-of-sample scores of
            # the versions before it (the evaluation picks, per day, the newest version trained before that day).
            ("model", "model_version", "instrument", "date"),
        ),
        # HIST's stock-to-concept memberships, and one row saying where they came from; written together in one
        # transaction (Warehouse.replace_tables).
        _spec("concepts", "instrument varchar not null, concept varchar not null", ("instrument", "concept")),
        _spec(
            "concept_source",
            "source varchar not null, origin varchar not null, concepts_version varchar not null, "
            "fitted_at timestamp, fit_start date, fit_end date, n_concepts integer, n_instruments integer",
            (),
        ),
    )
}


def member_condition(alias: str) -> str:
    """SQL condition: the row ``alias`` (with instrument and date columns) is a member of the configured
    universe on its date (table ``instruments``)."""
    return (
        f"exists (select 1 from instruments m where m.instrument = {alias}.instrument "
        f"and {alias}.date between m.start_date and m.end_date)"
    )


def duck_type(dtype: pl.DataType) -> str:
    mapping = {
        pl.Float32: "real",
        pl.Float64: "double",
        pl.Int8: "tinyint",
        pl.Int16: "smallint",
        pl.Int32: "integer",
        pl.Int64: "bigint",
        pl.UInt32: "ubigint",
        pl.UInt64: "ubigint",
        pl.Boolean: "boolean",
        pl.Utf8: "varchar",
        pl.Date: "date",
    }
    for pl_type, name in mapping.items():
        if dtype == pl_type:
            return name
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    raise TypeError(f"no warehouse column type for polars dtype {dtype}")


def ddl_for_frame(table: str, frame: pl.DataFrame, key: tuple[str, ...], primary_key: bool = True) -> str:
    cols = ", ".join(
        f'"{name}" {duck_type(dtype)}{" not null" if name in key else ""}' for name, dtype in frame.schema.items()
    )
    pk = f", primary key ({', '.join(key)})" if key and primary_key else ""
    return f'create table if not exists "{table}" ({cols}{pk})'
