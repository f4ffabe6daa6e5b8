"""Dagster wiring: Definitions, resources, partitions, jobs, schedules and the headless command line."""
