"""Bulk writes of a `Batch` into the raw tables: one transaction per batch.

DuckDB: the batch is handed over as Arrow tables (no per-row inserts).
PostgreSQL: the batch is written as CSV by Arrow and COPY'd into temporary tables.
Either way the ledger (`events`) decides which message ids are new, so a
batch written twice — or by two processes at once — lands exactly once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from .engine import ensure_schema, raw_connection
from .parsing import Batch
from .schema import DATA_TABLES, EVENT_TABLES, LOAD_SEQUENCE
from .settings import Settings

_ARROW_TYPES: dict[type, pa.DataType] = {
    sa.Text: pa.string(),
    sa.DateTime: pa.timestamp("us"),
    sa.Date: pa.date32(),
    sa.Boolean: pa.bool_(),
    sa.Integer: pa.int64(),
}
_TABLES = {t.name: t for t in DATA_TABLES}


def _written(name: str) -> list[sa.Column]:
    """The columns a batch carries (load_sequence is set as the batch commits)."""
    return [c for c in _TABLES[name].columns if c.name != LOAD_SEQUENCE]


def _arrow_type(column: sa.Column) -> pa.DataType:
    if isinstance(column.type, sa.Numeric):
        return pa.decimal128(column.type.precision or 38, column.type.scale or 0)
    return _ARROW_TYPES[type(column.type)]


def _arrow_schema(name: str) -> pa.Schema:
    return pa.schema([(c.name, _arrow_type(c)) for c in _written(name)])


_SCHEMAS = {name: _arrow_schema(name) for name in _TABLES}


def to_arrow(name: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    schema = _SCHEMAS[name]
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.table(
        [pa.array(col, type=f.type) for col, f in zip(cols, schema, strict=True)], schema=schema
    )


def batch_table(batch: Batch, name: str) -> pa.Table:
    """All rows of one raw table in the batch (Python tuples and Arrow parts) as one table."""
    schema = _SCHEMAS[name]
    rows = batch.rejected if name == "rejected" else batch.rows.get(name, [])
    parts = [to_arrow(name, rows)]
    parts += [part.rename_columns(schema.names).cast(schema) for part in batch.arrow.get(name, [])]
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


@dataclass
class WriteResult:
    new_events: int = 0
    duplicate_events: int = 0
    new_rejected: int = 0

    def __iadd__(self, other: WriteResult) -> WriteResult:
        self.new_events += other.new_events
        self.duplicate_events += other.duplicate_events
        self.new_rejected += other.new_rejected
        return self


def write_batch(settings: Settings, batch: Batch) -> WriteResult:
    """Write every row of `batch` in one transaction; return what was new."""
    if not len(batch):
        return WriteResult()
    if settings.is_spark:
        from . import spark

        return spark.write_batch(settings, batch)
    ensure_schema(settings)
    if settings.is_duckdb:
        for attempt in range(3):
            try:
                with raw_connection(settings) as conn:
                    return _write_duckdb(conn, settings.raw_schema, batch)
            except Exception as exc:
                # Seen once under load: registering the batch's Arrow tables failed
                # with "Table Function with name python_arrow_scan does not exist"
                # (DuckDB, while another thread opened a database). The batch is one
                # transaction and was rolled back, so writing it again is safe.
                if "python_arrow_scan" not in str(exc) or attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))
    with raw_connection(settings) as conn:
        return _write_postgres(conn, settings.raw_schema, batch)


def _names(name: str) -> list[str]:
    return [c.name for c in _written(name)]


def _insert(schema: str, name: str, sequence: int) -> str:
    """`insert into` the raw table from the batch's temporary table, numbering
    the rows with the batch's load_sequence."""
    cols = ", ".join(f'"{c}"' for c in _names(name))
    return (
        f'insert into "{schema}"."{name}" ({cols}, {LOAD_SEQUENCE}) '
        f"select {cols}, {int(sequence)} from th_batch_{name}"
    )


def next_sequence(cur: Any, schema: str, *, lock: bool) -> int:
    """The load_sequence of a write that commits in `cur`'s transaction: one more than
    the largest recorded. `lock` (PostgreSQL): first take the transaction-scoped lock
    that makes writes number themselves one at a time, so that a number is larger than
    that of every write committed before it (DuckDB admits one writing process)."""
    if lock:
        cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"trackhouse:{schema}",))
    found = cur.execute(f'select coalesce(max({LOAD_SEQUENCE}), 0) + 1 from "{schema}".batches')
    return int(found.fetchone()[0])


def record_batch(execute: Any, schema: str, sequence: int, rows: int) -> None:
    execute(
        f'insert into "{schema}".batches values ({int(sequence)}, '
        f"'{datetime.now(UTC).replace(tzinfo=None).isoformat()}', {int(rows)})"
    )


def _present(batch: Batch) -> list[str]:
    """The typed tables (not the ledger) that this batch has rows for."""
    names = set(batch.tables())
    return [t.name for t in EVENT_TABLES if t.name in names]


def _write_duckdb(con: Any, schema: str, batch: Batch) -> WriteResult:
    registered: list[str] = []
    try:
        con.execute("set enable_progress_bar = false")  # stdout is the report's
        con.execute("begin transaction")
        for name in ("events", *_present(batch)):
            con.register(f"th_batch_{name}", batch_table(batch, name))
            registered.append(f"th_batch_{name}")
        con.register("th_batch_rejected", batch_table(batch, "rejected"))
        registered.append("th_batch_rejected")
        con.execute(
            f"""create or replace temp table th_new as
            select message_id from th_batch_events
            where message_id not in (select message_id from "{schema}".events)"""
        )
        new_events = con.execute("select count(*) from th_new").fetchone()[0]
        # Numbered in commit order: a second writer in this process that takes the
        # same number conflicts on batches' key and rolls back (DuckDB admits one
        # writing process).
        sequence = next_sequence(con, schema, lock=False)
        con.execute(
            f"""{_insert(schema, "events", sequence)}
            where message_id in (select message_id from th_new)"""
        )
        for name in _present(batch):
            con.execute(
                f"""{_insert(schema, name, sequence)}
                where event_id in (select message_id from th_new)"""
            )
        record_batch(con.execute, schema, sequence, new_events)
        new_rejected = 0
        if batch.rejected:
            before = con.execute(f'select count(*) from "{schema}".rejected').fetchone()[0]
            con.execute(
                f"""insert into "{schema}".rejected
                select * from (select distinct on (rejected_id) * from th_batch_rejected)
                where rejected_id not in (select rejected_id from "{schema}".rejected)"""
            )
            new_rejected = (
                con.execute(f'select count(*) from "{schema}".rejected').fetchone()[0] - before
            )
        con.execute("drop table th_new")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        for view in registered:
            con.unregister(view)
    return WriteResult(new_events, batch.event_count - new_events, new_rejected)


def _copy(cur: Any, table: str, cols: list[str], rows: pa.Table) -> None:
    """COPY an Arrow table in, written as CSV by Arrow (no Python object per value):
    a null is an empty field, an empty string a quoted one, as PostgreSQL reads them."""
    if not rows.num_rows:
        return
    # Without empty record batches: pyarrow's CSV writer (26.0) writes garbage for them.
    rows = pa.Table.from_batches([b for b in rows.to_batches() if b.num_rows], rows.schema)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(rows, sink, pacsv.WriteOptions(include_header=False, batch_size=8192))
    data = sink.getvalue()
    with cur.copy(f"copy {table} ({', '.join(cols)}) from stdin with (format csv)") as copy:
        for start in range(0, data.size, 1 << 22):
            copy.write(memoryview(data)[start : start + (1 << 22)])


def _temp_table(name: str) -> str:
    """`create temp table th_batch_<name>` with the raw table's columns spelled out:
    `(like raw.table)` needs SELECT on the raw table, which trackhouse_writer lacks."""
    dialect = postgresql.dialect()
    cols = ", ".join(f'"{c.name}" {c.type.compile(dialect=dialect)}' for c in _written(name))
    return f"create temp table th_batch_{name} ({cols}) on commit drop"


def _write_postgres(conn: Any, schema: str, batch: Batch) -> WriteResult:
    with conn.transaction(), conn.cursor() as cur:
        for name in ("events", *_present(batch)):
            cur.execute(_temp_table(name))
            _copy(cur, f"th_batch_{name}", _names(name), batch_table(batch, name))
        cur.execute("create temp table th_new (message_id text primary key) on commit drop")
        # From here to the commit one batch at a time (a transaction-scoped lock):
        # its load_sequence is then larger than that of every batch committed
        # before, so a dbt build that saw sequence n has seen all batches up to n.
        sequence = next_sequence(cur, schema, lock=True)
        # Concurrent loaders: a message id another transaction is inserting
        # waits for it, then is skipped here; so every event lands once. Keys
        # are inserted in sorted order so that two loaders of overlapping
        # batches wait for each other in one direction only (no deadlock).
        cur.execute(
            f"""with inserted as (
                {_insert(schema, "events", sequence)}
                order by message_id
                on conflict (message_id) do nothing
                returning message_id
            )
            insert into th_new select message_id from inserted"""
        )
        new_events = cur.rowcount
        for name in _present(batch):
            cur.execute(
                f"""{_insert(schema, name, sequence)}
                where event_id in (select message_id from th_new)
                on conflict (event_id) do nothing"""
            )
        record_batch(cur.execute, schema, sequence, new_events)
        new_rejected = 0
        if batch.rejected:
            cur.execute(_temp_table("rejected"))
            _copy(cur, "th_batch_rejected", _names("rejected"), batch_table(batch, "rejected"))
            cur.execute(
                f"""insert into "{schema}".rejected
                select distinct on (rejected_id) * from th_batch_rejected
                order by rejected_id
                on conflict (rejected_id) do nothing"""
            )
            new_rejected = cur.rowcount
    conn.commit()
    return WriteResult(new_events, batch.event_count - new_events, new_rejected)
