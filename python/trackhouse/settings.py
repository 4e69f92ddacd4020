"""The one place that reads configuration: the dbt profile at the repository root.

dbt, the loader, the query API and Dagster all resolve the same `profiles.yml`
and the same target, so one environment variable moves everything.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import ConfigError

PROFILE_NAME = "trackhouse"
DEFAULT_RAW_SCHEMA = "trackhouse_raw"
TARGETS = ("duckdb", "postgres", "spark")


def find_project_dir(start: Path | None = None) -> Path:
    """The directory holding `profiles.yml`: $TRACKHOUSE_PROJECT_DIR, else the
    working directory or its nearest parent that has one."""
    explicit = os.environ.get("TRACKHOUSE_PROJECT_DIR")
    if explicit:
        return Path(explicit).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "profiles.yml").is_file():
            return candidate
    # The package ships inside the repository: fall back to its root.
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / "profiles.yml").is_file():
        return package_root
    return here


def _env_var(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ConfigError(
            f"profiles.yml needs the environment variable {name}; set it, e.g. export {name}=..."
        )
    return value


def _render(value: Any) -> Any:
    """Render dbt's `{{ env_var(...) }}` jinja the way dbt does."""
    if isinstance(value, dict):
        return {k: _render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v) for v in value]
    if isinstance(value, str) and "{{" in value:
        import jinja2  # only for profiles that use env_var(): keeps `import trackhouse` light

        env = jinja2.Environment()
        env.filters["as_number"] = lambda v: int(v) if str(v).isdigit() else float(v)
        env.filters["as_bool"] = lambda v: str(v).lower() in ("1", "true", "yes")
        rendered = env.from_string(value).render(env_var=_env_var)
        return int(rendered) if rendered.isdigit() and "as_number" in value else rendered
    return value


@dataclass(frozen=True)
class Settings:
    """The resolved target: where the raw tables and the marts live."""

    project_dir: Path
    target: str
    output: dict[str, Any] = field(repr=False)
    raw_schema: str = DEFAULT_RAW_SCHEMA

    @property
    def is_duckdb(self) -> bool:
        return self.output["type"] == "duckdb"

    @property
    def is_spark(self) -> bool:
        return self.output["type"] == "spark"

    @cached_property
    def spark_dir(self) -> Path:
        """Spark's warehouse directory and Derby metastore ($TRACKHOUSE_SPARK_DIR when
        the settings were loaded, like every other value of the profile)."""
        return self.resolve(str(self.output.get("trackhouse_spark_dir", "data/spark")))

    @property
    def mart_schema(self) -> str:
        return str(self.output.get("schema", "main" if self.is_duckdb else "public"))

    @cached_property
    def duckdb_path(self) -> Path:
        """The DuckDB file; a relative path is relative to the project directory
        (where profiles.yml and dbt_project.yml are), whatever the working directory."""
        return self.resolve(str(self.output["path"]))

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A configured path: `~` expanded, relative ones against the project directory."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.project_dir / p).resolve()

    @cached_property
    def spool_dir(self) -> Path:
        """Where the application spools events for this warehouse: $TRACKHOUSE_SPOOL_DIR,
        else beside the DuckDB file (`warehouse.duckdb.spool/`), else (PostgreSQL)
        `data/spool/postgres-<host>-<port>-<dbname>` in the project directory."""
        explicit = os.environ.get("TRACKHOUSE_SPOOL_DIR")
        if explicit:
            return self.resolve(explicit)
        if self.is_duckdb:
            return self.duckdb_path.with_name(self.duckdb_path.name + ".spool")
        if self.is_spark:
            return self.spark_dir / "spool"
        o = self.output
        where = f"{o.get('host')}-{o.get('port', 5432)}-{o.get('dbname') or o.get('database')}"
        return self.resolve(f"data/spool/{self.target}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", where))

    @property
    def sqlalchemy_url(self) -> str:
        o = self.output
        if self.is_duckdb:
            return f"duckdb:///{self.duckdb_path}"
        if o["type"] == "postgres":
            from sqlalchemy.engine import URL

            return URL.create(
                "postgresql+psycopg",
                username=o.get("user"),
                password=o.get("password") or None,
                host=o.get("host"),
                port=int(o.get("port", 5432)),
                database=o.get("dbname") or o.get("database"),
            ).render_as_string(hide_password=False)
        if self.is_spark:
            # Not a SQLAlchemy URL (Spark is read through trackhouse.spark): the key by
            # which caches tell warehouses apart.
            return f"spark:///{self.spark_dir}"
        raise ConfigError(
            f"target {self.target!r} has type {o['type']!r}; "
            "trackhouse supports duckdb, postgres and spark (spark has no SQLAlchemy URL: "
            "it is read through trackhouse.spark)."
        )

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt subprocess that must see the same target."""
        env = dict(os.environ)
        env["TRACKHOUSE_TARGET"] = self.target
        env["TRACKHOUSE_RAW_SCHEMA"] = self.raw_schema
        env.setdefault("DBT_PROFILES_DIR", str(self.project_dir))
        if self.is_duckdb:
            env["TRACKHOUSE_DUCKDB_PATH"] = str(self.duckdb_path)
        if self.is_spark:
            env["TRACKHOUSE_SPARK_DIR"] = str(self.spark_dir)
        return env


# Resolved settings by everything they depend on: the arguments, the environment and
# profiles.yml's identity. Rendering the profile (YAML, Jinja for env_var) costs
# milliseconds, which the query API would otherwise pay on every call.
_SETTINGS_CACHE: dict[tuple[Any, ...], Settings] = {}
_SETTINGS_CACHE_SIZE = 32


def load_settings(target: str | None = None, project_dir: Path | None = None) -> Settings:
    """Resolve the profile and target exactly as dbt would.

    The result is reused while the arguments, the environment variables and
    profiles.yml (its path, size and modification time) stay the same."""
    project_dir = project_dir or find_project_dir()
    profiles_dir = Path(os.environ.get("DBT_PROFILES_DIR", project_dir))
    path = profiles_dir / "profiles.yml"
    try:
        profiles_stat = path.stat()
    except OSError:
        profiles_stat = None
    if profiles_stat is None or not stat.S_ISREG(profiles_stat.st_mode):
        raise ConfigError(
            f"no profiles.yml in {profiles_dir}; run trackhouse from the project directory "
            "or set TRACKHOUSE_PROJECT_DIR to it."
        )
    key = (
        target,
        project_dir,
        str(path),
        profiles_stat.st_ino,
        profiles_stat.st_size,
        profiles_stat.st_mtime_ns,
        tuple(sorted(os.environ.items())),
    )
    cached = _SETTINGS_CACHE.get(key)
    if cached is None:
        if len(_SETTINGS_CACHE) >= _SETTINGS_CACHE_SIZE:
            _SETTINGS_CACHE.clear()
        cached = _SETTINGS_CACHE[key] = _read_settings(target, project_dir, path)
    return cached


def _read_settings(target: str | None, project_dir: Path, path: Path) -> Settings:
    import yaml

    profiles = yaml.safe_load(path.read_text()) or {}
    if PROFILE_NAME not in profiles:
        raise ConfigError(f"{path} has no profile named {PROFILE_NAME!r}; add one (see README).")
    profile = profiles[PROFILE_NAME]
    outputs = profile.get("outputs") or {}
    chosen = target or os.environ.get("TRACKHOUSE_TARGET") or _render(profile.get("target"))
    if chosen not in outputs:
        raise ConfigError(
            f"target {chosen!r} is not in {path}; valid targets: {', '.join(sorted(outputs))}. "
            "Set TRACKHOUSE_TARGET to one of them."
        )
    output = _render(outputs[chosen])
    if output.get("type") == "spark":
        output["trackhouse_spark_dir"] = os.environ.get("TRACKHOUSE_SPARK_DIR", "data/spark")
    return Settings(
        project_dir=project_dir,
        target=str(chosen),
        output=output,
        raw_schema=os.environ.get("TRACKHOUSE_RAW_SCHEMA", DEFAULT_RAW_SCHEMA),
    )
