"""SQLAlchemy engines for the configured target, and the DuckDB single-writer rule."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .errors import WarehouseBusyError
from .schema import init_schema
from .settings import Settings, load_settings

# How long a writer waits for another process (dbt, another loader) to release
# a DuckDB file before giving up with a clear error.
LOCK_TIMEOUT_SECONDS = float(os.environ.get("TRACKHOUSE_LOCK_TIMEOUT", "120"))


@lru_cache(maxsize=16)
def _engine(url: str, is_duckdb: bool) -> Engine:
    if is_duckdb:
        # No pool: a DuckDB file admits one writing process, so trackhouse opens
        # it only for the moment it writes or reads, and dbt can run in between.
        return sa.create_engine(url, poolclass=sa.pool.NullPool)
    return sa.create_engine(url, pool_pre_ping=True)


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or load_settings()
    if settings.is_duckdb:
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    return _engine(settings.sqlalchemy_url, settings.is_duckdb)


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


@contextmanager
def raw_connection(settings: Settings) -> Iterator[Any]:
    """The driver's own connection (duckdb or psycopg) for bulk paths.

    On DuckDB, waits while another process holds the file, then raises
    `WarehouseBusyError` naming the file and what to do.
    """
    engine = get_engine(settings)
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    delay = 0.05
    while True:
        try:
            proxied = engine.raw_connection()
            break
        except Exception as exc:  # duckdb raises IOException wrapped by SQLAlchemy
            if not (settings.is_duckdb and _is_lock_error(exc)):
                raise
            if time.monotonic() > deadline:
                raise WarehouseBusyError(
                    f"the DuckDB file {settings.duckdb_path} is locked by another process "
                    f"(dbt, Dagster or another loader) for more than {LOCK_TIMEOUT_SECONDS:.0f}s; "
                    "wait for it to finish and retry, or raise TRACKHOUSE_LOCK_TIMEOUT."
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        driver = proxied.driver_connection
        if settings.is_duckdb:
            driver = driver._ConnectionWrapper__c  # the duckdb.DuckDBPyConnection
        yield driver
    finally:
        proxied.close()


_initialised: set[tuple[str, str]] = set()


def ensure_schema(settings: Settings) -> None:
    """Create the raw schema once per process (the first write does it too)."""
    key = (settings.sqlalchemy_url, settings.raw_schema)
    if key in _initialised:
        return
    init_schema(get_engine(settings), settings.raw_schema)
    _initialised.add(key)
