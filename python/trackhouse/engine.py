"""SQLAlchemy engines for the configured target, and the DuckDB single-writer rule.

Two ways in:

- the **write path** (`raw_connection`, `get_engine`): loaders, drains, `init`.
  On DuckDB it opens the file read-write (creating it if needed) only for the
  moment it writes, and waits while another process holds it.
- the **read path** (`read_connection`, `read_engine`): the query API, the CLI,
  summaries. On DuckDB it opens the file READ-ONLY, so it never creates a
  warehouse (a missing file is a clear error naming the path) and never takes
  the writer's lock; if a writer is in the middle of a commit it retries
  briefly (`TRACKHOUSE_READ_TIMEOUT`, default 10 s). On PostgreSQL reads run in
  read-only transactions (MVCC: readers and writers never wait for each other).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .errors import ConfigError, WarehouseBusyError, WarehouseMissingError
from .schema import init_schema
from .settings import Settings, load_settings

# How long a writer waits for another process (dbt, another loader) to release
# a DuckDB file before giving up with a clear error.
LOCK_TIMEOUT_SECONDS = float(os.environ.get("TRACKHOUSE_LOCK_TIMEOUT", "120"))
# How long a reader retries while a writer holds the DuckDB file.
READ_TIMEOUT_SECONDS = float(os.environ.get("TRACKHOUSE_READ_TIMEOUT", "10"))
T = TypeVar("T")
_lock_timeout: ContextVar[float | None] = ContextVar("trackhouse_lock_timeout", default=None)


@contextmanager
def lock_timeout(seconds: float | None) -> Iterator[None]:
    """Within this block (this thread), writers wait at most `seconds` for a
    locked DuckDB file (None: TRACKHOUSE_LOCK_TIMEOUT). A drain at interpreter
    exit uses a short one, so exit is never held up by `dbt build`."""
    token = _lock_timeout.set(seconds)
    try:
        yield
    finally:
        _lock_timeout.reset(token)


_created: list[Engine] = []


def _forget_connections_in_child() -> None:
    # A forked child (gunicorn --preload, multiprocessing) must not use the
    # parent's pooled connections: it opens its own (SQLAlchemy's advice).
    for engine in _created:
        engine.dispose(close=False)
    # Locks another thread of the parent held at the fork stay held in the child,
    # where that thread does not exist: the child starts with free ones.
    global _engines_lock, _initialising
    _engines_lock = threading.Lock()
    _initialising = threading.Lock()
    _file_locks.clear()


os.register_at_fork(after_in_child=_forget_connections_in_child)


ENGINE_CACHE_SIZE = 16
_engines: OrderedDict[tuple[str, bool, bool], Engine] = OrderedDict()
_engines_lock = threading.Lock()


def _engine(url: str, is_duckdb: bool, read_only: bool = False) -> Engine:
    """One engine (one pool) per warehouse URL, the least recently used of more
    than ENGINE_CACHE_SIZE disposed: a process that talks to many PostgreSQL
    databases in turn (a test session, a multi-tenant job) keeps at most that
    many pools' idle connections open, not one pool per database it ever used."""
    key = (url, is_duckdb, read_only)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
        engine = _engines[key] = _create(url, is_duckdb, read_only)
        _created.append(engine)
        while len(_engines) > ENGINE_CACHE_SIZE:
            _, evicted = _engines.popitem(last=False)
            _created.remove(evicted)
            # Idle connections close now; one checked out closes when returned
            # (the engine stays usable for whoever still holds it).
            evicted.dispose()
    return engine


def dispose_engines() -> None:
    """Close every pooled connection this process holds (engines stay usable:
    they reconnect on next use). For a caller done with its warehouses, e.g. a
    test that drops its PostgreSQL database afterwards."""
    with _engines_lock:
        engines = list(_engines.values())
    for engine in engines:
        engine.dispose()


# How long a connect waits for this process's own last connection to a DuckDB
# file to finish closing (see `_connect_duckdb`); milliseconds in practice.
HANDOFF_TIMEOUT_SECONDS = 10.0


def _is_handoff_error(exc: BaseException) -> bool:
    return "Unique file handle conflict" in str(exc)


def _connect_duckdb(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """Open a DuckDB file, riding out this process's own hand-off.

    Threads of one process share one database instance per file, which closes with
    its last connection. A thread that connects while another thread's last
    connection is still closing finds the file attached by the closing instance
    ("Unique file handle conflict"): a CI run met it between the loader's writer
    thread and the main thread reading the suppression list (writers now take
    turns, see `_turn`; a reader thread still can). The conflict lasts until the
    close completes, so the connect is retried for a moment."""
    deadline = time.monotonic() + HANDOFF_TIMEOUT_SECONDS
    delay = 0.001
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            if not _is_handoff_error(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _create(url: str, is_duckdb: bool, read_only: bool) -> Engine:
    if is_duckdb:
        # No pool: a DuckDB file admits one writing process, so trackhouse opens
        # it only for the moment it writes or reads, and dbt can run in between.
        args = {"read_only": True} if read_only else {}
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)
        sa.event.listen(engine, "do_connect", _connect_duckdb)
        return engine
    # A bounded connect: a drain thread must notice an unreachable server and retry.
    args = {"connect_timeout": 10}
    if read_only:
        args["options"] = "-c default_transaction_read_only=on"  # type: ignore[assignment]
    return sa.create_engine(url, pool_pre_ping=True, connect_args=args)


def _no_engine_on_spark(settings: Settings) -> None:
    if settings.is_spark:
        raise ConfigError(
            f"target {settings.target!r} is Spark, which has no SQLAlchemy engine here; "
            "read it with trackhouse.spark.fetch(settings, sql) or trackhouse.query.fetch"
        )


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or load_settings()
    _no_engine_on_spark(settings)
    if settings.is_duckdb:
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    return _engine(settings.sqlalchemy_url, settings.is_duckdb)


def _timeout() -> float:
    timeout = _lock_timeout.get()
    return LOCK_TIMEOUT_SECONDS if timeout is None else timeout


def _is_lock_error(exc: BaseException) -> bool:
    """Another process holds the file, or another thread of this one has it open
    the other way (read-only while this opens it to write, or the converse: DuckDB
    admits one configuration per file in a process)."""
    text = str(exc)
    return (
        "Could not set lock" in text
        or "Conflicting lock" in text
        or "different configuration than existing connections" in text
    )


@contextmanager
def raw_connection(settings: Settings) -> Iterator[Any]:
    """The driver's own connection (duckdb or psycopg) for bulk paths.

    On DuckDB, waits while another process (or another thread of this one) holds
    the file, then raises `WarehouseBusyError` naming the file and what to do.
    """
    if settings.is_spark:
        from .spark import DriverConnection, ensure_raw_tables

        ensure_raw_tables(settings)
        yield DriverConnection(settings)
        return
    deadline = _deadline()
    with _turn(settings, deadline):
        proxied = _open(settings, get_engine(settings).raw_connection, deadline)
        try:
            driver = proxied.driver_connection
            if settings.is_duckdb:
                driver = driver._ConnectionWrapper__c  # the duckdb.DuckDBPyConnection
            yield driver
        finally:
            proxied.close()


@contextmanager
def write_transaction(settings: Settings) -> Iterator[sa.Connection]:
    """A SQLAlchemy connection in a transaction, for writes through SQLAlchemy
    (forgetting, pruning): committed when the block ends, rolled back if it raises.
    It waits for the DuckDB file as `raw_connection` does."""
    _no_engine_on_spark(settings)
    deadline = _deadline()
    with _turn(settings, deadline):
        conn = _open(settings, get_engine(settings).connect, deadline)
        try:
            with conn.begin():
                yield conn
        finally:
            conn.close()


_file_locks: dict[str, threading.RLock] = {}


def _file_lock(settings: Settings) -> threading.RLock:
    with _engines_lock:
        return _file_locks.setdefault(str(settings.duckdb_path), threading.RLock())


def _deadline() -> float:
    """When a writer waiting now gives up: one deadline for the wait for another
    thread of this process and the wait for another process together."""
    return time.monotonic() + _timeout()


@contextmanager
def _turn(settings: Settings, deadline: float) -> Iterator[None]:
    """On DuckDB, threads of this process take turns writing a file, as processes
    do by its lock: two write transactions at once in one DuckDB instance conflict
    (the same batch number, the same new ids). PostgreSQL: no turn to wait for."""
    if not settings.is_duckdb:
        yield
        return
    lock = _file_lock(settings)
    left = deadline - time.monotonic()
    # acquire() takes -1 for "no limit" (TRACKHOUSE_LOCK_TIMEOUT=inf) and at most TIMEOUT_MAX
    if not lock.acquire(timeout=-1 if left > threading.TIMEOUT_MAX else max(left, 0)):
        raise WarehouseBusyError(
            f"the DuckDB file {settings.duckdb_path} is held by another thread of this "
            f"process for more than {_timeout():.0f}s; wait for it to finish and retry, "
            "or raise TRACKHOUSE_LOCK_TIMEOUT."
        )
    try:
        yield
    finally:
        lock.release()


# DuckDB admits one configuration of a file per process: a caller's own connection
# (opened with other settings) looks like a lock held elsewhere.
_OWN_CONNECTION = (
    "(A connection of your own in this process, such as duckdb.connect(path), "
    "also holds it: close that one first.)"
)


def _open(settings: Settings, opener: Callable[[], T], deadline: float) -> T:
    """`opener()`, retried while another process holds the DuckDB file (or another
    thread of this one has it open read-only) until `deadline`."""
    timeout = _timeout()
    delay = 0.05
    while True:
        try:
            return opener()
        except Exception as exc:  # duckdb raises IOException wrapped by SQLAlchemy
            if not (settings.is_duckdb and _is_lock_error(exc)):
                raise
            if time.monotonic() > deadline:
                raise WarehouseBusyError(
                    f"the DuckDB file {settings.duckdb_path} is locked by another process "
                    f"(dbt, Dagster or another loader) or read by another thread of this one "
                    f"for more than {timeout:.0f}s; "
                    "wait for it to finish and retry, or raise TRACKHOUSE_LOCK_TIMEOUT. "
                    + _OWN_CONNECTION
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


_initialised: set[tuple[str, str]] = set()
_initialising = threading.Lock()


def ensure_schema(settings: Settings) -> None:
    """Create the raw schema once per process (the first write does it too)."""
    if settings.is_spark:
        from .spark import ensure_raw_tables

        ensure_raw_tables(settings)
        return
    key = (settings.sqlalchemy_url, settings.raw_schema)
    if key in _initialised:
        return
    # One thread creates it: two creating the same schema at once conflict.
    with _initialising:
        if key not in _initialised:
            # waits for the file, as every writer does
            deadline = _deadline()
            with _turn(settings, deadline):
                engine = get_engine(settings)
                _open(settings, lambda: init_schema(engine, settings.raw_schema), deadline)
            _initialised.add(key)


def read_engine(settings: Settings | None = None) -> Engine:
    """The engine for reads; on DuckDB it opens the file read-only and never creates it."""
    settings = settings or load_settings()
    _no_engine_on_spark(settings)
    if settings.is_duckdb:
        check_warehouse_exists(settings)
    return _engine(settings.sqlalchemy_url, settings.is_duckdb, True)


def check_warehouse_exists(settings: Settings) -> None:
    """Raise `WarehouseMissingError` when the DuckDB file is not there."""
    path = settings.duckdb_path
    if not path.is_file():
        raise WarehouseMissingError(
            f"no DuckDB warehouse at {path} (target {settings.target!r}); nothing was created. "
            "Run `make demo` (demo data) or `trackhouse load FILE` and `dbt build` to make one, "
            "or fix TRACKHOUSE_DUCKDB_PATH (a relative path is resolved against the project "
            f"directory {settings.project_dir})."
        )


@contextmanager
def read_connection(settings: Settings | None = None) -> Iterator[sa.Connection]:
    """A SQLAlchemy connection for reading the marts and raw tables.

    On DuckDB: read-only, retried for up to TRACKHOUSE_READ_TIMEOUT seconds while
    another process writes the file, then `WarehouseBusyError` naming it.
    """
    settings = settings or load_settings()
    engine = read_engine(settings)
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    delay = 0.02
    while True:
        try:
            conn = engine.connect()
            break
        except Exception as exc:
            if not (settings.is_duckdb and _is_lock_error(exc)):
                raise
            if time.monotonic() > deadline:
                raise WarehouseBusyError(
                    f"the DuckDB file {settings.duckdb_path} is being written by another process "
                    f"(dbt build, a load or a drain), or by another thread of this one, "
                    f"for more than {READ_TIMEOUT_SECONDS:.0f}s; "
                    "DuckDB lets no other process read while one writes. Retry when it "
                    "finishes, raise TRACKHOUSE_READ_TIMEOUT, or use PostgreSQL for "
                    "dashboards that must read during builds. " + _OWN_CONNECTION
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    try:
        yield conn
    finally:
        conn.close()
