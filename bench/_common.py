"""What the benchmarks share: the environment that points trackhouse and dbt at a
scratch DuckDB file, and timing one step as its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


def timed_process(cmd: list[str], env: dict[str, str], label: str) -> tuple[float, str]:
    """Run `cmd` (in the project directory) as one benchmark step: its wall-clock
    seconds and its standard output; stop the benchmark with its output if it fails."""
    print(f"... {label}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{label} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds, done.stdout
