"""The one place that decides the environment Dagster runs in.

`load_environment()` reads the trackhouse profile (`trackhouse.settings.load_settings`,
which picks DuckDB or PostgreSQL from `TRACKHOUSE_TARGET`) and the few orchestration
settings; `build_resources()` maps that environment to the one resources dict every
asset, sensor and schedule uses. Nothing else in this package reads `os.environ`.

- `TRACKHOUSE_TARGET` (default `duckdb`): the dbt target the assets write to.
- `TRACKHOUSE_LANDING_DIR` (default `data/landing`, relative to the project): the
  folder the landing sensor watches.
- `TRACKHOUSE_LANDING_SETTLE_SECONDS` (default 5): a file is loaded once it has not
  changed for this long.
- `TRACKHOUSE_LANDING_INTERVAL_SECONDS` (default 30): how often the sensor looks.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackhouse.errors import ConfigError
from trackhouse.settings import Settings, load_settings

from .project import dbt_project

# Assets that write the warehouse share this pool; dagster.yaml gives every pool a
# limit of 1, so ingestion and dbt never write the same DuckDB file at once.
WAREHOUSE_POOL = "trackhouse_warehouse"
DEFAULT_LANDING_DIR = Path("data") / "landing"


@dataclass(frozen=True)
class Environment:
    """Everything that differs between a laptop, CI and production."""

    settings: Settings
    landing_dir: Path
    dbt_executable: str = "dbt"
    settle_seconds: float = 5.0
    sensor_interval_seconds: int = 30

    @property
    def project_dir(self) -> Path:
        return self.settings.project_dir

    @property
    def target(self) -> str:
        return self.settings.target


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ConfigError(
            f"{name}={raw!r} is not a number of seconds; set it to a non-negative number "
            f"(default {default:g}) or unset it."
        )
    return value


def find_dbt() -> str:
    """The dbt beside this Python (the project's virtualenv), else dbt on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.is_file():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise ConfigError(
            f"no dbt executable beside {sys.executable} or on PATH; install the project "
            "with `make setup` (it installs dbt-core and the adapters)."
        )
    return found


def load_environment(env: Mapping[str, str] | None = None) -> Environment:
    """Resolve the environment from the process environment (or `env`, for tests)."""
    env = os.environ if env is None else env
    settings = load_settings()
    landing = Path(env.get("TRACKHOUSE_LANDING_DIR") or DEFAULT_LANDING_DIR)
    if not landing.is_absolute():
        landing = settings.project_dir / landing
    return Environment(
        settings=settings,
        landing_dir=landing,
        dbt_executable=find_dbt(),
        settle_seconds=_number(env, "TRACKHOUSE_LANDING_SETTLE_SECONDS", 5.0),
        sensor_interval_seconds=max(
            1, int(_number(env, "TRACKHOUSE_LANDING_INTERVAL_SECONDS", 30))
        ),
    )


def build_resources(environment: Environment) -> dict[str, Any]:
    """The resources for this environment: DuckDB locally, PostgreSQL when
    TRACKHOUSE_TARGET=postgres. Both targets use the same resource types; only the
    profile target (and with it the dbt adapter and the SQLAlchemy URL) differs."""
    from dagster_dbt import DbtCliResource

    from .resources import LandingFolder, Warehouse

    return {
        "dbt": DbtCliResource(
            project_dir=dbt_project(environment.settings),
            dbt_executable=environment.dbt_executable,
            target=environment.target,
        ),
        "warehouse": Warehouse(target=environment.target, project_dir=str(environment.project_dir)),
        "landing": LandingFolder(
            path=str(environment.landing_dir), settle_seconds=environment.settle_seconds
        ),
    }
