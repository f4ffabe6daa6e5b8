"""Entry point for `dagster dev` / workspace.yaml: the Definitions built from the environment."""

from pipeline.definitions import build_definitions

defs = build_definitions()
