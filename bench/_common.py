"""What the benchmarks share: the environment that points trackhouse and dbt at a
scratch DuckDB file."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def duckdb_env(db: Path) -> dict[str, str]:
    """The process environment with trackhouse and dbt on the DuckDB file `db`."""
    return {
        **os.environ,
        "TRACKHOUSE_TARGET": "duckdb",
        "TRACKHOUSE_DUCKDB_PATH": str(db),
        "DBT_PROFILES_DIR": str(ROOT),
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
    }
