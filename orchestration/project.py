"""The dbt project as Dagster sees it; dagster-dbt prepares its manifest.

No manifest is committed. dagster-dbt's own preparation (`dbt deps` when there are
packages, then `dbt parse`) writes it to `target/dagster/<target>/` — one folder per
profile target, so a DuckDB manifest is never read for PostgreSQL:

- under `dagster dev` (`DAGSTER_IS_DEV_CLI`), `DbtProject.prepare_if_dev()` parses on
  every load, so an edited model shows after "Reload";
- for a deployment, `dagster-dbt project prepare-and-package --file
  orchestration/project.py` prepares `trackhouse_dbt` (the configured target) once at
  build time, and the code location only reads the manifest;
- anywhere else (a fresh clone, the tests, `dagster definitions validate`) a missing
  manifest is prepared the same way.

A failing `dbt parse` is raised with dbt's message and the fix; an older manifest is
never used in its place. This module does not import `orchestration.environment`
(environment -> project, never back).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster_dbt import DbtProject
from dagster_dbt.errors import DagsterDbtError

from trackhouse.errors import ConfigError
from trackhouse.settings import Settings, load_settings

# Where Dagster keeps its dbt manifest and run artifacts, inside the dbt target folder
# but apart from `target/` itself (make build) and the tests' `target/pytest-*`.
DBT_TARGET_PATH = Path("target") / "dagster"

_projects: dict[tuple[Path, str], DbtProject] = {}


def dbt_project(settings: Settings) -> DbtProject:
    """The DbtProject for this profile target (one object per project dir and target)."""
    key = (settings.project_dir, settings.target)
    if key not in _projects:
        _projects[key] = DbtProject(
            project_dir=settings.project_dir,
            target_path=DBT_TARGET_PATH / settings.target,
            target=settings.target,
        )
    return _projects[key]


@contextmanager
def _dbt_on_path() -> Iterator[None]:
    """dagster-dbt's preparer runs `dbt` from PATH: put the dbt installed beside this
    Python (the project's virtualenv) first, also when the venv is not activated."""
    saved = os.environ.get("PATH", "")
    beside = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([beside, saved]) if saved else beside
    try:
        yield
    finally:
        os.environ["PATH"] = saved


def prepare_manifest(settings: Settings, *, refresh: bool = False) -> Path:
    """The manifest of the dbt project for this target, prepared by dagster-dbt.

    Parses under `dagster dev`, when the manifest is missing, or with `refresh=True`;
    otherwise the manifest prepared at deploy time is used as it is.
    """
    project = dbt_project(settings)
    try:
        with _dbt_on_path():
            if refresh or not project.manifest_path.is_file():
                project.preparer.prepare(project)
            else:
                project.prepare_if_dev()
    except DagsterDbtError as exc:
        raise ConfigError(
            f"dbt could not parse the project in {settings.project_dir} for target "
            f"{settings.target!r}, so Dagster has no manifest: {exc}\nFix the dbt project "
            "(`dbt parse --profiles-dir . --project-dir .` shows the error) and reload the "
            "code location."
        ) from exc
    if not project.manifest_path.is_file():
        raise ConfigError(
            f"no dbt manifest at {project.manifest_path}; prepare it with "
            "`dagster-dbt project prepare-and-package --file orchestration/project.py`."
        )
    return project.manifest_path


def marts_by_area(manifest: dict[str, Any]) -> dict[str, set[str]]:
    """The mart models of the manifest by area: models/marts/<area>/<mart>.sql."""
    found: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        parts = str(node.get("original_file_path", "")).split("/")
        if (
            node["resource_type"] == "model"
            and len(parts) >= 4
            and parts[:2] == ["models", "marts"]
        ):
            found.setdefault(parts[2], set()).add(str(node["name"]))
    return found


# The project of the configured target (TRACKHOUSE_TARGET): what `dagster-dbt project
# prepare-and-package --file orchestration/project.py` finds and prepares.
trackhouse_dbt = dbt_project(load_settings())
