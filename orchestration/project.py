"""The dbt project as Dagster sees it, and its manifest.

No manifest is committed: `prepare_manifest()` runs `dbt parse` into
`target/dagster/` when the manifest is missing, older than any file of the dbt
project, or was parsed for another adapter (the target changed). `dagster dev`,
the run workers and the tests all go through it; a file lock keeps two processes
from parsing at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject
from filelock import FileLock

from trackhouse.errors import ConfigError

from .environment import DBT_TARGET_PATH, Environment

log = logging.getLogger(__name__)

# What a parse reads: a change to any of these makes the manifest stale.
PROJECT_FOLDERS = ("models", "macros", "seeds", "snapshots", "analyses", "tests/dbt")
PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml", "selectors.yml")
PROJECT_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md", ".py")
PARSE_TIMEOUT_SECONDS = 300


def project_inputs(project_dir: Path) -> Iterable[Path]:
    """The files and folders a `dbt parse` of the project depends on (folders count:
    adding or deleting a file changes their mtime)."""
    for name in PROJECT_FILES:
        path = project_dir / name
        if path.exists():
            yield path
    for folder in PROJECT_FOLDERS:
        root = project_dir / folder
        if not root.is_dir():
            continue
        yield root
        for path in root.rglob("*"):
            if path.is_dir() or path.suffix in PROJECT_SUFFIXES:
                yield path


def manifest_staleness(manifest_path: Path, project_dir: Path, adapter_type: str) -> str | None:
    """Why the manifest must be (re)built, or None when it is up to date."""
    if not manifest_path.is_file():
        return f"no manifest at {manifest_path}"
    built = manifest_path.stat().st_mtime
    for path in project_inputs(project_dir):
        try:
            if path.stat().st_mtime > built:
                return f"{path.relative_to(project_dir)} changed after the last parse"
        except FileNotFoundError:  # deleted while we looked: its folder's mtime tells
            continue
    try:
        with open(manifest_path, encoding="utf-8") as f:
            # The adapter is in the first few hundred bytes; no need to load 1 MB.
            head = f.read(4096)
        parsed_for = _adapter_type(head) or _adapter_type_full(manifest_path)
    except OSError as exc:
        return f"the manifest cannot be read ({exc})"
    if parsed_for != adapter_type:
        return f"the manifest was parsed for {parsed_for!r}, the target is {adapter_type!r}"
    return None


def _adapter_type(head: str) -> str | None:
    marker = '"adapter_type": "'
    start = head.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = head.find('"', start)
    return head[start:end] if end > start else None


def _adapter_type_full(manifest_path: Path) -> str | None:
    with open(manifest_path, encoding="utf-8") as f:
        return json.load(f).get("metadata", {}).get("adapter_type")


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


_projects: dict[tuple[Path, str], DbtProject] = {}


def dbt_project(environment: Environment) -> DbtProject:
    """The DbtProject for this environment (one object per project dir and target)."""
    key = (environment.project_dir, environment.target)
    if key not in _projects:
        _projects[key] = DbtProject(
            project_dir=environment.project_dir,
            target_path=DBT_TARGET_PATH,
            target=environment.target,
        )
    return _projects[key]


def _parse(project: DbtProject, executable: str) -> None:
    resource = DbtCliResource(project_dir=project, dbt_executable=executable)
    resource.cli(["parse", "--quiet"], target_path=project.target_path).wait()


def prepare_manifest(environment: Environment) -> Path:
    """A manifest that matches the dbt project on disk; parses only when needed.

    When a parse fails (a model being written has an error) and an older manifest
    exists, that one is used and the failure is logged; without any manifest the
    error is raised with dbt's message.
    """
    project = dbt_project(environment)
    adapter_type = str(environment.settings.output["type"])
    if manifest_staleness(project.manifest_path, environment.project_dir, adapter_type) is None:
        return project.manifest_path
    project.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(project.manifest_path.with_suffix(".lock")), timeout=PARSE_TIMEOUT_SECONDS)
    with lock:
        # Another process may have parsed while we waited for the lock.
        reason = manifest_staleness(project.manifest_path, environment.project_dir, adapter_type)
        if reason is None:
            return project.manifest_path
        log.info("dbt parse into %s: %s", project.manifest_path.parent, reason)
        try:
            _parse(project, environment.dbt_executable)
        except Exception as exc:
            if project.manifest_path.is_file():
                log.warning(
                    "dbt parse failed, using the previous manifest %s: %s",
                    project.manifest_path,
                    exc,
                )
                return project.manifest_path
            raise ConfigError(
                f"dbt parse failed, so Dagster has no manifest at {project.manifest_path}: "
                f"{exc}\nFix the dbt project (`dbt parse --profiles-dir . --project-dir .` "
                "shows the error) and reload the code location."
            ) from exc
    return project.manifest_path
