"""Entry point for `dagster dev` / workspace.yaml: the Definitions built from the environment."""

from pipeline.definitions import build_definitions
from pipeline.instance import configure_event_log

# The code server launches the UI's runs as its child processes: they inherit the event-log switches set here.
configure_event_log()
defs = build_definitions()
