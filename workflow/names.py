"""The asset names of the per-handler and per-model stages, defined once: the Dagster assets are named by these,
and the workflow's errors name the asset a user must materialize."""


def handler_asset(handler: str) -> str:
    return f"handler_{handler}"


def model_asset(model: str) -> str:
    return f"model_{model}"


def predictions_asset(model: str) -> str:
    return f"predictions_{model}"


def signal_asset(model: str) -> str:
    return f"signal_{model}"


def backtest_asset(model: str) -> str:
    return f"backtest_{model}"


# The stock-to-concept memberships HIST reads (table `concepts`).
CONCEPTS_ASSET = "concepts"
