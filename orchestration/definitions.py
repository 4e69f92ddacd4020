"""The Dagster code location: `dagster dev` in the project root ([tool.dagster] in
pyproject.toml names this module; `make dagster` adds a persistent DAGSTER_HOME).

One asset graph from the NDJSON files in the landing folder to every mart:
ingestion (`raw/<table>`) -> dbt seeds, staging, intermediate, marts; dbt tests
are asset checks. The environment (DuckDB or PostgreSQL) is read once, in
`orchestration.environment.load_environment`.
"""

from __future__ import annotations

import json
import logging

import dagster as dg

from .environment import Environment, build_resources, load_environment
from .ingestion import build_ingestion_assets
from .metadata import missing_previews
from .project import dbt_project, marts_by_area, prepare_manifest
from .schedules import build_schedules
from .sensors import LOAD_JOB_NAME, build_landing_sensor
from .transform import build_dbt_assets

log = logging.getLogger(__name__)


def build_definitions(environment: Environment | None = None) -> dg.Definitions:
    environment = environment or load_environment()
    manifest_path = prepare_manifest(environment.settings)
    marts = marts_by_area(json.loads(manifest_path.read_text(encoding="utf-8")))
    present = {name for names in marts.values() for name in names}
    for name in missing_previews(present):
        log.warning("mart %s is not in the dbt project (yet): no preview on its page", name)

    raw_files = build_ingestion_assets(environment)
    dbt_assets = build_dbt_assets(dbt_project(environment.settings), manifest_path)
    load_job = dg.define_asset_job(
        LOAD_JOB_NAME,
        selection=dg.AssetSelection.assets(raw_files),
        description="Load NDJSON files into the raw tables (launched by the landing sensor).",
    )
    return dg.Definitions(
        assets=[raw_files, dbt_assets],
        jobs=[load_job],
        schedules=build_schedules(dbt_assets, set(marts)),
        sensors=[build_landing_sensor(environment, load_job)],
        resources=build_resources(environment),
    )


defs = build_definitions()
