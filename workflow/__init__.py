"""The workflow layer: each stage of the pipeline as plain functions that read from and write to the warehouse,
called by the Dagster assets and the command line alike (see docs/architecture.md).

features (compute and store a window) -> handlers (fit and store processor statistics) and concepts (HIST's
stock-to-concept memberships) -> training (train, store and register a model) -> scoring (score a window) ->
evaluation (signal analysis, backtest, leaderboard) -> benchmark (several seeds per model, Qlib's table).
``segments``, ``panels`` and ``names`` are shared by them.
"""
