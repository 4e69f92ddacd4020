"""Reading the marts: shared plumbing for the query API and the CLI.

Each capability has a module here (activity, attribution, statistics) with the
public query functions; `trackhouse.cli` turns them into `trackhouse query ...`
commands. All read the same profile and target as dbt.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from ..engine import read_connection
from ..errors import TrackhouseError
from ..settings import Settings, load_settings

T = TypeVar("T")


def relation(name: str, settings: Settings) -> str:
    """The quoted name of a mart in the target schema."""
    return f'"{settings.mart_schema}"."{name}"'


def text_type(settings: Settings) -> str:
    """The text type to cast to (the dbt macro `varchar_type`): Spark spells it `string`
    (its `varchar` needs a length)."""
    return "string" if settings.is_spark else "varchar"


def double_type(settings: Settings) -> str:
    """8-byte floating point (the dbt macro `double_type`)."""
    return "double" if settings.is_spark else "double precision"


def epoch_seconds(expr: str, settings: Settings) -> str:
    """Seconds since 1970 of a UTC timestamp without zone (the dbt macro `epoch_seconds`)."""
    if settings.is_spark:
        return f"(unix_micros(cast({expr} as timestamp_ltz)) / 1000000.0)"
    return f"extract(epoch from {expr})"


def fetch(
    sql: str,
    params: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    postgres_planner: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run a read query on the target; rows as dicts keyed by column name.
    `postgres_planner`: PostgreSQL settings for this query's transaction only
    (`set_config(name, value, true)`); ignored on the other targets."""
    settings = settings or load_settings()
    if settings.is_spark:
        from .. import spark

        return spark.fetch(settings, sql, params)
    try:
        with read_connection(settings) as conn:
            if postgres_planner and not settings.is_duckdb:
                for name, value in postgres_planner.items():
                    conn.execute(
                        sa.text("select set_config(:name, :value, true)"),
                        {"name": name, "value": value},
                    )
            result = conn.execute(sa.text(sql), dict(params or {}))
            return [dict(row._mapping) for row in result]
    except sa.exc.ProgrammingError as exc:
        if "does not exist" in str(exc) or "Catalog Error" in str(exc):
            raise _missing_mart(settings, exc.orig) from exc
        raise


def _missing_mart(settings: Settings, cause: object) -> TrackhouseError:
    return TrackhouseError(
        f"a table this query needs is missing in {settings.target} "
        f"({settings.mart_schema}); run `dbt build` (or `make build`) first.\n{cause}"
    )


# -- in-memory copies of marts (DuckDB): the per-call cost of repeated queries --
# Opening a DuckDB file costs more than a small query on it, and a reader may not
# keep it open (DuckDB lets no other process write while one reads). So a query
# that is asked again and again (attribution for another window) runs on copies
# of the marts it reads, held in an in-memory DuckDB database and taken again as
# soon as the file or its write-ahead log changes (a load, a dbt build).
SNAPSHOT_CACHE_SIZE = 4
_snapshots: OrderedDict[tuple[Path, str, tuple[str, ...]], _Snapshot] = OrderedDict()
_snapshots_lock = threading.Lock()


class _Snapshot:
    """In-memory copies of some marts, and what was derived from them (`derived`:
    built once per copy by `snapshot_derived`, dropped with it)."""

    def __init__(self, signature: tuple[Any, ...], memory: Any) -> None:
        self.signature = signature
        self.memory = memory
        self.derived: dict[str, Any] = {}
        self.lock = threading.Lock()


def _file_signature(path: Path) -> tuple[Any, ...]:
    """What changes when DuckDB commits: the file, or its write-ahead log."""
    out: list[Any] = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st = p.stat()
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _copy_marts(settings: Settings, tables: tuple[str, ...]) -> Any:
    import duckdb

    memory = duckdb.connect(":memory:")
    memory.execute(f'create schema if not exists "{settings.mart_schema}"')
    with read_connection(settings) as conn:
        driver = conn.connection.driver_connection
        for table in tables:
            try:
                data = driver.sql(f"select * from {relation(table, settings)}").to_arrow_table()
            except duckdb.CatalogException as exc:
                raise _missing_mart(settings, exc) from exc
            memory.register("_copied", data)
            memory.execute(f"create table {relation(table, settings)} as select * from _copied")
            memory.unregister("_copied")
    return memory


def _snapshot_of(settings: Settings, tables: tuple[str, ...]) -> _Snapshot:
    key = (settings.duckdb_path, settings.mart_schema, tables)
    with _snapshots_lock:
        # Taken before copying: a commit during the copy makes the next call copy again.
        signature = _file_signature(settings.duckdb_path)
        cached = _snapshots.get(key)
        if cached is not None and cached.signature == signature:
            _snapshots.move_to_end(key)
            return cached
        snapshot = _Snapshot(signature, _copy_marts(settings, tables))
        _snapshots[key] = snapshot
        _snapshots.move_to_end(key)
        while len(_snapshots) > SNAPSHOT_CACHE_SIZE:
            # Not closed here: another thread may still be reading it; freed when unused.
            _snapshots.popitem(last=False)
    return snapshot


def _snapshot(settings: Settings, tables: tuple[str, ...]) -> Any:
    return _snapshot_of(settings, tables).memory


def snapshot_derived(
    settings: Settings, tables: Iterable[str], name: str, build: Callable[[Any], T]
) -> T:
    """(DuckDB) `build(memory)` of the current in-memory copy of the marts `tables`,
    made once per copy: taken again, with the copy, when the warehouse file changes.
    `build` may create tables of its own in `memory` (a private in-memory database)."""
    snapshot = _snapshot_of(settings, tuple(sorted(tables)))
    with snapshot.lock:
        if name not in snapshot.derived:
            snapshot.derived[name] = build(snapshot.memory)
        return snapshot.derived[name]  # type: ignore[no-any-return]


def duckdb_binds(sql: str, params: Mapping[str, Any]) -> str:
    """`sql` with SQLAlchemy's :name binds written as DuckDB's $name."""
    for name in sorted(params, key=len, reverse=True):
        sql = re.sub(rf"(?<![:\w]):{name}\b", f"${name}", sql)
    return sql


def fetch_marts(
    sql: str,
    params: Mapping[str, Any] | None,
    settings: Settings,
    tables: Iterable[str],
    postgres_planner: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """`fetch` for a query that reads only the marts `tables`: on DuckDB it runs on
    in-memory copies of them, taken again whenever the warehouse file changes;
    on other targets it is `fetch`."""
    if not settings.is_duckdb:
        return fetch(sql, params, settings, postgres_planner)
    memory = _snapshot(settings, tuple(sorted(tables)))
    params = dict(params or {})
    sql = duckdb_binds(sql, params)
    cursor = memory.cursor()
    try:
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()
