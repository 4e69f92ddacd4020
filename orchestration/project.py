"""The dbt project as Dagster sees it; dagster-dbt prepares its manifest.

No manifest is committed. dagster-dbt's own preparation (`dbt deps` when there are
packages, then `dbt parse`) writes it to `target/dagster/<target>/` — one folder per
profile target, so a DuckDB manifest is never read for PostgreSQL:

- under `dagster dev` (`DAGSTER_IS_DEV_CLI`), a load parses when the project changed
  since the manifest was parsed (its files, the DBT_*/TRACKHOUSE_* environment, the
  target, dbt's version), so an edited model shows after "Reload", and the run and
  step workers, which load the code location again, do not parse an unchanged project;
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

import hashlib
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


# Beside the manifest: a fingerprint of what it was parsed from (see _inputs_fingerprint).
INPUTS_STAMP = "trackhouse-manifest-inputs.txt"
# What dbt reads besides its resource folders (dbt_project.yml names those).
_PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml", "package-lock.yml")
_DEFAULT_PATHS = {
    "model-paths": ["models"],
    "macro-paths": ["macros"],
    "seed-paths": ["seeds"],
    "snapshot-paths": ["snapshots"],
    "analysis-paths": ["analyses"],
    "test-paths": ["tests"],
    "docs-paths": [],
}


def _inputs_fingerprint(project: DbtProject) -> str:
    """A hash of everything `dbt parse` of this project reads: the content of the
    project's files (dbt_project.yml, its resource folders, installed packages, the
    profile), the variables of the environment dbt and the profile read (DBT_*,
    TRACKHOUSE_*), the target and dbt's version."""
    import yaml
    from dbt.version import __version__ as dbt_version

    root = Path(project.project_dir)
    config = yaml.safe_load((root / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    folders = [
        folder
        for key, default in _DEFAULT_PATHS.items()
        for folder in config.get(key, default) or []
    ]
    folders.append(config.get("packages-install-path", "dbt_packages"))
    files = [root / name for name in _PROJECT_FILES]
    files.append(Path(project.profiles_dir) / "profiles.yml")
    for folder in folders:
        if (root / folder).is_dir():
            files += sorted(p for p in (root / folder).rglob("*") if p.is_file())
    digest = hashlib.blake2b(digest_size=20)
    for key in ("dbt", dbt_version, "target", str(project.target)):
        digest.update(key.encode() + b"\0")
    for name, value in sorted(os.environ.items()):
        if name.startswith(("DBT_", "TRACKHOUSE_")):
            digest.update(f"{name}={value}".encode() + b"\0")
    for path in files:
        if path.is_file():
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _parsed_from_these_inputs(project: DbtProject) -> bool:
    stamp = project.manifest_path.parent / INPUTS_STAMP
    return (
        project.manifest_path.is_file()
        and stamp.is_file()
        and stamp.read_text().strip() == _inputs_fingerprint(project)
    )


def _prepare(project: DbtProject) -> None:
    """dagster-dbt's preparation (`dbt deps` if there are packages, `dbt parse`), and
    the fingerprint of what it parsed; a failing parse leaves no fingerprint."""
    stamp = project.manifest_path.parent / INPUTS_STAMP
    stamp.unlink(missing_ok=True)
    fingerprint = _inputs_fingerprint(project)  # before: an edit during the parse parses again
    project.preparer.prepare(project)
    stamp.write_text(fingerprint + "\n")


def prepare_manifest(settings: Settings, *, refresh: bool = False) -> Path:
    """The manifest of the dbt project for this target, prepared by dagster-dbt.

    Parses when the manifest is missing, with `refresh=True`, and under `dagster dev`
    when the project changed since the manifest was parsed; otherwise the manifest
    (prepared at deploy time, or by the last load) is used as it is.

    dagster-dbt's own `prepare_if_dev` parses on every load under `dagster dev`, and
    every process of a run loads the code location (the run worker, then each step
    worker), so each run paid a `dbt parse` (~10 s here) per process. The fingerprint
    of the parsed inputs (files, environment, target, dbt version) keeps "Reload after
    an edit" and skips the parses that would give the same manifest.
    """
    project = dbt_project(settings)
    try:
        with _dbt_on_path():
            stale = project.preparer.using_dagster_dev() and not _parsed_from_these_inputs(project)
            if refresh or not project.manifest_path.is_file() or stale:
                _prepare(project)
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
