"""Resources: handles on the warehouse and the landing folder (built in environment.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from trackhouse.settings import Settings, load_settings


class Warehouse(dg.ConfigurableResource):
    """The trackhouse target: the same profile and target as dbt and the CLI."""

    target: str
    project_dir: str

    def settings(self) -> Settings:
        return load_settings(self.target, Path(self.project_dir))

    @contextmanager
    def dbt_environment(self) -> Iterator[Settings]:
        """While open, os.environ is what `Settings.dbt_env()` says, so a dbt subprocess
        started inside (DbtCliResource copies os.environ) sees the same target and the
        same absolute DuckDB path as the loader."""
        settings = self.settings()
        wanted = settings.dbt_env()
        saved = {key: os.environ.get(key) for key in wanted}
        os.environ.update(wanted)
        try:
            yield settings
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class LandingFolder(dg.ConfigurableResource):
    """The folder where NDJSON files are dropped for loading."""

    path: str
    settle_seconds: float = 5.0

    @property
    def directory(self) -> Path:
        return Path(self.path)
