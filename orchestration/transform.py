"""The dbt project as assets: every seed and model, dbt tests as asset checks.

The translator gives each dbt source the key of the ingestion asset that writes
its table (`raw/<table>`), so staging hangs under ingestion in one graph, and
groups the models by layer and area (staging, intermediate, activity,
attribution, statistics).
"""

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from pydantic import Field

from trackhouse.settings import Settings

from .dbt_cli import dbt_build_args, parse_vars, prune_run_folders, run_target_path
from .environment import WAREHOUSE_POOL
from .ingestion import INGESTION_GROUP, RAW_TABLES, raw_asset_key
from .metadata import model_metadata
from .resources import Warehouse

DBT_ASSETS_NAME = "trackhouse_dbt"
SOURCE_NAME = "trackhouse_raw"
LAYER_GROUPS = {"staging": "staging", "intermediate": "intermediate", "seeds": "seeds"}


def group_for(node: Mapping[str, Any]) -> str:
    """staging / intermediate / seeds, and the marts by area (activity, attribution, ...)."""
    if node["resource_type"] == "source":
        return INGESTION_GROUP
    if node["resource_type"] == "seed":
        return "seeds"
    fqn = list(node.get("fqn") or [])
    layer = fqn[1] if len(fqn) > 2 else ""
    if layer == "marts" and len(fqn) > 3:
        return str(fqn[2])
    return LAYER_GROUPS.get(layer, "dbt")


class TrackhouseTranslator(DagsterDbtTranslator):
    """dbt sources -> the ingestion assets' keys; models grouped by layer and area."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # dagster-dbt also calls this directly (e.g. for source-test observations),
        # so sources must get their ingestion key here as well.
        if dbt_resource_props["resource_type"] == "source":
            return source_asset_key(dbt_resource_props)
        return super().get_asset_key(dbt_resource_props)

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = self.get_resource_props(manifest, unique_id)
        if node["resource_type"] == "source":
            spec = spec.replace_attributes(key=source_asset_key(node))
        return spec.replace_attributes(group_name=group_for(node))


def source_asset_key(node: Mapping[str, Any]) -> dg.AssetKey:
    """raw/<table> for a table of the trackhouse_raw source; a source the ingestion
    does not write is an error, because nothing in the graph would produce it."""
    if node.get("source_name") != SOURCE_NAME or node["name"] not in RAW_TABLES:
        raise dg.DagsterInvalidDefinitionError(
            f"dbt source {node.get('source_name')}.{node['name']} has no ingestion asset; "
            f"sources must be tables of {SOURCE_NAME} written by trackhouse "
            f"({', '.join(RAW_TABLES)}). Add the table to python/trackhouse/schema.py or "
            "remove the source."
        )
    return raw_asset_key(node["name"])


class DbtBuildConfig(dg.Config):
    full_refresh: bool = Field(
        default=False, description="Rebuild incremental models from scratch (--full-refresh)."
    )
    unit_tests: bool = Field(
        default=False,
        description="Also run the dbt unit tests (they test SQL logic; `make test` runs them).",
    )
    vars: str = Field(
        default="",
        description="dbt vars for this run as YAML, e.g. '{as_of: 2024-05-31, window_days: 14}'.",
    )


def _seed_partial_parse(project: DbtProject, target: Path) -> None:
    """Start the run's dbt from the prepared project's parse (partial parsing)."""
    source = project.project_dir / project.target_path / "partial_parse.msgpack"
    destination = target / "partial_parse.msgpack"
    if source.is_file() and not destination.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, destination)


def _built_nodes(invocation: Any) -> Mapping[str, Any]:
    """The nodes of the run's own manifest (its schemas are the ones dbt wrote to)."""
    try:
        return dict(invocation.get_artifact("manifest.json")["nodes"])
    except (OSError, ValueError, KeyError):  # dbt failed before writing it
        return dict(invocation.manifest["nodes"])


def _with_table_metadata(event: Any, nodes: Mapping[str, Any], settings: Settings) -> Any:
    """A dbt model's materialization with its row count, latest time and preview."""
    if not isinstance(event, dg.Output):
        return event
    unique_id = event.metadata.get("unique_id")
    node = nodes.get(str(unique_id.value)) if unique_id is not None else None
    if node is None:
        return event
    return event.with_metadata({**event.metadata, **model_metadata(settings, node)})


def build_dbt_assets(project: DbtProject, manifest_path: Path) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=manifest_path,
        project=project,
        name=DBT_ASSETS_NAME,
        # Source tests (unique/not_null on the raw tables) become checks of raw/<table>.
        dagster_dbt_translator=TrackhouseTranslator(
            DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
        ),
        pool=WAREHOUSE_POOL,
    )
    def trackhouse_dbt(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        warehouse: Warehouse,
        config: DbtBuildConfig,
    ) -> Iterator[Any]:
        args = dbt_build_args(
            full_refresh=config.full_refresh,
            vars=parse_vars(config.vars),
            unit_tests=config.unit_tests,
        )
        base = project.project_dir / project.target_path
        target = run_target_path(base, context.run.run_id)
        _seed_partial_parse(project, target)
        with warehouse.dbt_environment() as settings:
            invocation = dbt.cli(args, context=context, raise_on_error=False, target_path=target)
        # Collect first, yield after: on DuckDB the dbt process holds the file until it
        # exits, and the metadata reads the tables it built. (The UI therefore shows the
        # materializations when the build ends, not one by one.)
        events = list(invocation.stream())
        nodes = _built_nodes(invocation)
        for event in events:
            yield _with_table_metadata(event, nodes, settings)
        prune_run_folders(base)
        if not invocation.is_successful():
            error = invocation.get_error()
            raise error if error is not None else dg.Failure("dbt build failed")

    return trackhouse_dbt
