"""dbt command lines, built by small pure functions (unit-tested in tests/test_orchestration.py).

dagster-dbt adds the `--select`/`--exclude` of the assets a run materializes; these
functions build the rest.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from trackhouse.errors import ConfigError

RUNS_FOLDER = "runs"
KEEP_RUN_FOLDERS = 20
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_vars(text: str) -> dict[str, Any]:
    """dbt vars given as YAML or JSON text (as dbt's --vars takes them); '' = none."""
    if not text.strip():
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"dbt vars {text!r} are not valid YAML ({exc}); give a mapping such as "
            "'{as_of: 2024-05-31, window_days: 14}'."
        ) from exc
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"dbt vars {text!r} are a {type(value).__name__}, not a mapping; give them as "
            "'{name: value, ...}', e.g. '{report_timezone: Europe/Amsterdam}'."
        )
    return {str(k): v for k, v in value.items()}


def dbt_build_args(
    *,
    full_refresh: bool = False,
    vars: Mapping[str, Any] | None = None,
    unit_tests: bool = False,
) -> list[str]:
    """`dbt build` with the run's options; vars as JSON so dbt reads them exactly.

    dbt unit tests check SQL logic on fixed inputs, not the data: they run in
    development and CI (`make test`), and are left out of the scheduled builds
    unless asked for, as dbt recommends for production."""
    args = ["build"]
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    if vars:
        args += ["--vars", json.dumps(dict(vars), sort_keys=True, default=str)]
    return args


def marts_selection(areas: Iterable[str]) -> str:
    """A dbt selection of the marts in models/marts/<area> and everything upstream."""
    selected = [f"+path:models/marts/{area}" for area in areas]
    if not selected:
        raise ConfigError("marts_selection needs at least one area, e.g. 'activity'.")
    return " ".join(selected)


def run_target_path(base: Path, run_id: str) -> Path:
    """The dbt target folder of one Dagster run: <base>/runs/<run id>, so runs never
    share artifacts and the prepared manifest in <base> is never overwritten."""
    if not _RUN_ID.match(run_id):
        raise ConfigError(f"run id {run_id!r} cannot name a folder; expected letters, digits, -")
    return base / RUNS_FOLDER / run_id


def prune_run_folders(base: Path, keep: int = KEEP_RUN_FOLDERS) -> list[Path]:
    """Delete all but the `keep` newest run folders under <base>/runs; returns the deleted."""
    root = base / RUNS_FOLDER
    if not root.is_dir():
        return []
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    removed = folders[keep:]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed
