"""Dagster orchestration for trackhouse: thin glue around `trackhouse` (ingestion)
and the dbt project (every transformation). No SQL transformations and no business
rules live here. The code location is `orchestration.definitions`."""
