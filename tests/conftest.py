"""Shared fixtures: one suite, run against DuckDB and PostgreSQL (and Spark for parity).

`TRACKHOUSE_TEST_TARGETS` (default `duckdb,postgres,spark`; `make test-spark` runs the
Spark parity module alone) picks the targets; the
`warehouse` fixture is parametrised over DuckDB and PostgreSQL, so every test that
uses it runs once per target, the way pudo/dataset runs its suite once per
DATABASE_URL. Spark is compared with DuckDB in tests/test_parity_spark.py.
PostgreSQL is a real server started for the session (tests/pg_server.py); if it
cannot start, the PostgreSQL tests error with the reason — nothing is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dbt_in_process
import orjson
import pytest

from trackhouse.settings import Settings, load_settings

import pg_server

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGETS = [
    t for t in os.environ.get("TRACKHOUSE_TEST_TARGETS", "duckdb,postgres,spark").split(",") if t
]
# Spark runs in one module of its own (tests/test_parity_spark.py: one SparkSession,
# one build); every other test runs once per SQL target.
SQL_TARGETS = [t for t in TARGETS if t != "spark"]
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
# `Warehouse.dbt` runs dbt in the test process (tests/dbt_in_process.py);
# TRACKHOUSE_TEST_DBT_SUBPROCESS=1 starts a `dbt` process per command instead.
DBT_IN_PROCESS = os.environ.get("TRACKHOUSE_TEST_DBT_SUBPROCESS", "") != "1"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` runs `--dist loadgroup`: the tests of one `xdist_group` share a worker
    (one Spark build, one Dagster instance, one parity build). pytest-xdist marks them
    by renaming each test `<id>@<group>` on the worker; a pytest that ignores the
    rename (pytest 9 with xdist 3.8) silently spreads every group over both workers,
    building each module fixture twice. Stop then, with the fix."""
    if not config.getoption("loadgroup", default=False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
            raise pytest.UsageError(
                f"{item.nodeid} is marked xdist_group, but pytest-xdist could not tag it "
                f"(pytest {pytest.__version__}): the groups would run on every worker. "
                "Use the pytest pinned in requirements.lock (make setup)."
            )


# One dbt target directory per test process, target and set of vars: partial parsing is
# reused between the tests of a process, and parallel processes never collide.
_TARGET_DIR = ROOT / "target" / f"pytest-{_WORKER}-{os.getpid()}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The process's target directories go with it (~100 MB of partial parses a run)."""
    shutil.rmtree(_TARGET_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def pg() -> Iterator[pg_server.PostgresServer]:
    server = pg_server.start()
    yield server
    server.stop()


@dataclass
class Warehouse:
    """A fresh, empty warehouse on one target, with dbt and the loader pointed at it."""

    target: str
    env: dict[str, str]
    tmp: Path
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = load_settings(self.target, ROOT)

    # -- running things -------------------------------------------------
    def run(
        self, *args: str, check: bool = True, timeout: int = 600
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env}
        proc = subprocess.run(
            list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}"
                f"\n--- stderr\n{proc.stderr[-3000:]}"
            )
        return proc

    def dbt(
        self,
        *args: str,
        vars: dict[str, Any] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        vars_json = orjson.dumps(vars or {}, option=orjson.OPT_SORT_KEYS)
        # dbt parses the whole project again when --vars differ from the last command's
        # (about 3 s): a target directory per set of vars keeps each set's partial parse.
        target_path = _TARGET_DIR / self.target / hashlib.sha1(vars_json).hexdigest()[:12]
        cmd = [
            str(BIN / "dbt"),
            *args,
            "--profiles-dir",
            str(ROOT),
            "--project-dir",
            str(ROOT),
            "--target-path",
            str(target_path),
            "--log-path",
            str(target_path),
            # Nothing reads these tests' manifest.json, run_results.json or dbt.log (the
            # output is in stdout): writing them is a fifth of a small build's time.
            "--no-write-json",
            "--log-level-file",
            "none",
        ]
        if vars:
            cmd += ["--vars", vars_json.decode()]
        if not DBT_IN_PROCESS:
            return self.run(*cmd, check=check)
        proc = dbt_in_process.run(cmd[1:], self.env)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {proc.returncode}\n--- output\n{proc.stdout[-9000:]}"
            )
        return proc

    def build(
        self, *select: str, vars: dict[str, Any] | None = None, full_refresh: bool = False
    ) -> subprocess.CompletedProcess[str]:
        args = ["build"]
        if select:
            args += ["--select", *select]
        if full_refresh:
            args.append("--full-refresh")
        return self.dbt(*args, vars=vars)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "trackhouse"), *args, check=check)

    # -- reading --------------------------------------------------------
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        from trackhouse.query import fetch

        return fetch(sql, params, self.settings)

    def table(self, name: str, order_by: str = "1") -> list[dict[str, Any]]:
        return self.query(
            f'select * from "{self.settings.mart_schema}"."{name}" order by {order_by}'
        )

    def raw(self, name: str) -> list[dict[str, Any]]:
        return self.query(f'select * from "{self.settings.raw_schema}"."{name}" order by 1')

    def count(self, name: str, schema: str | None = None) -> int:
        schema = schema or self.settings.raw_schema
        return int(self.query(f'select count(*) as n from "{schema}"."{name}"')[0]["n"])

    def write_ndjson(
        self, events: list[dict[str, Any]] | list[bytes], name: str = "events.ndjson"
    ) -> Path:
        path = self.tmp / name
        with open(path, "wb") as f:
            for e in events:
                f.write(e if isinstance(e, bytes) else orjson.dumps(e))
                f.write(b"\n")
        return path


# dbt's unit tests check each model's SQL on fixed inputs: what a warehouse holds
# changes nothing, and they are half of a whole-project build on test-sized data. The
# parity builds run them on each target (tests/test_parity.py: DuckDB and PostgreSQL;
# tests/test_parity_spark.py: Spark); the other tests' builds leave them out.
NO_UNIT_TESTS = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}


# One warehouse name per test process and target, emptied before and after each test:
# dbt's partial parsing keys on the profile's connection values (DuckDB path,
# PostgreSQL database), so a new name per test would cost every test a full parse of
# the project (about 5 s on 2 cores). Tests of one process run one after another.
_WAREHOUSE_FILE = _TARGET_DIR / "warehouse" / "test.duckdb"
_WAREHOUSE_DB = f"th_{_WORKER}_{os.getpid()}"


def _close_trackers() -> None:
    """Stop what a test left running in this process (a Tracker's spool thread drains
    into the warehouse it was made for) before the next test gets the same name."""
    from trackhouse import ingest

    for tracker in list(ingest._open_trackers):
        # the test is over; a failing last drain is that test's business
        with contextlib.suppress(Exception):
            tracker.close()


def _forget_warehouse() -> None:
    """This process's memory of the warehouse under that name (the raw schema made,
    the suppression list and hashing key read): the next test's warehouse is new."""
    from trackhouse import engine, privacy

    engine._initialised.clear()
    with privacy._cache_lock:
        privacy._cache.clear()
    privacy._hashing_cache.clear()
    privacy._memo.clear()


def _remove_duckdb(path: Path) -> None:
    for f in (path, path.with_name(path.name + ".wal")):
        f.unlink(missing_ok=True)


@pytest.fixture(params=SQL_TARGETS)
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warehouse]:
    target = request.param
    _forget_warehouse()
    if target == "duckdb":
        _WAREHOUSE_FILE.parent.mkdir(parents=True, exist_ok=True)
        _remove_duckdb(_WAREHOUSE_FILE)
        env = {
            "TRACKHOUSE_TARGET": "duckdb",
            "TRACKHOUSE_DUCKDB_PATH": str(_WAREHOUSE_FILE),
        }
    else:
        server = request.getfixturevalue("pg")
        dbname = _WAREHOUSE_DB
        server.create_database(dbname)  # drops a leftover first
        env = server.env(dbname)
    env |= {
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        "DBT_PROFILES_DIR": str(ROOT),
        "TRACKHOUSE_LOCK_TIMEOUT": "30",
        "TRACKHOUSE_SPOOL_DIR": str(tmp_path / "spool"),  # the Python API's spool, per test
        **NO_UNIT_TESTS,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield Warehouse(target=target, env=env, tmp=tmp_path)
    _close_trackers()
    from trackhouse.engine import dispose_engines

    # Give the server (or the file) back: this test's pools close, and its database
    # goes (also ending what a stray connection still holds).
    dispose_engines()
    _forget_warehouse()
    if target == "duckdb":
        _remove_duckdb(_WAREHOUSE_FILE)
    else:
        server.drop_database(dbname)
