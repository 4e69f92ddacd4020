"""Bulk writes of a `Batch` into the raw tables: one transaction per batch.

DuckDB: the batch is handed over as Arrow tables (no per-row inserts).
PostgreSQL: under a lock that admits one writing batch at a time, the message ids
already in the ledger are looked up and the rest COPY'd straight into the raw tables,
encoded by Arrow (binary where the columns allow, else CSV).
Either way the ledger (`events`) decides which message ids are new, so a
batch written twice — or by two processes at once — lands exactly once.
"""

from __future__ import annotations

import array
import contextlib
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
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
    # One DuckDB thread while the batch is written: the parse has the other core, and
    # DuckDB's workers only contended with it (1M-line load 3.5% faster, ~30 MiB less:
    # bench/notes/load.md). The setting is the database's: put back as it was.
    threads = con.execute("select current_setting('threads')").fetchone()[0]
    con.execute("set threads = 1")
    try:
        con.execute("set enable_progress_bar = false")  # stdout is the report's
        con.execute("begin transaction")
        tables = {name: batch_table(batch, name) for name in ("events", *_present(batch))}
        for name, table in tables.items():
            con.register(f"th_batch_{name}", table)
            registered.append(f"th_batch_{name}")
        con.register("th_batch_rejected", batch_table(batch, "rejected"))
        registered.append("th_batch_rejected")
        # An anti join, not `not in`: both sides are keys (never null), and DuckDB
        # plans `not in` as a mark join, about twice the cost (bench/notes/load.md).
        con.execute(
            f"""create or replace temp table th_new as
            select message_id from th_batch_events
            anti join "{schema}".events using (message_id)"""
        )
        new_events = con.execute("select count(*) from th_new").fetchone()[0]
        # Numbered in commit order: a second writer in this process that takes the
        # same number conflicts on batches' key and rolls back (DuckDB admits one
        # writing process).
        sequence = next_sequence(con, schema, lock=False)
        # The batch's ids are distinct (loader._merge_fast); when all of them are new
        # (a first load, most daily ones) every row goes in, without the semi join.
        some_known = new_events < tables["events"].num_rows
        con.execute(
            f"""{_insert(schema, "events", sequence)}
            {"where message_id in (select message_id from th_new)" if some_known else ""}"""
        )
        for name in _present(batch):
            con.execute(
                f"""{_insert(schema, name, sequence)}
                {"where event_id in (select message_id from th_new)" if some_known else ""}"""
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
        # After a failure the database may be gone: its error is the one to raise.
        with contextlib.suppress(Exception):
            con.execute(f"set threads = {int(threads)}")
    return WriteResult(new_events, batch.event_count - new_events, new_rejected)


# -- PostgreSQL ----------------------------------------------------------
# Rows per piece sent to COPY: the server parses one piece while Arrow writes the next.
COPY_ROWS = 16_384
# PostgreSQL's unique_violation (psycopg raises errors.UniqueViolation).
_UNIQUE_VIOLATION = "23505"
# COPY's binary format: signature, flags, header extension length; a field count of -1 ends it.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"
# PostgreSQL counts time from 2000-01-01, Arrow from 1970-01-01.
_PG_EPOCH_MICROSECONDS = 946_684_800_000_000
# The binary form of each fixed-width column type: the Arrow integer it is cast to
# (big-endian on the wire), as an `array` typecode of the same width.
_FIXED: dict[type, tuple[pa.DataType, str]] = {
    sa.DateTime: (pa.int64(), "q"),
    sa.Boolean: (pa.int8(), "b"),
    sa.Integer: (pa.int32(), "i"),
    sa.BigInteger: (pa.int64(), "q"),
}


def _binary(columns: list[sa.Column]) -> bool:
    """Whether COPY can take these columns in binary: text, timestamps, booleans and
    integers. Not numeric (its binary form is base-10000 digits, which Arrow cannot
    write) nor date (only in statistics, which has a numeric): such tables go as CSV."""
    return all(type(c.type) is sa.Text or type(c.type) in _FIXED for c in columns)


def _big_endian(values: pa.Array, typecode: str) -> bytes:
    """Integers without nulls as big-endian bytes (network order, as COPY reads them)."""
    out = array.array(typecode)
    width = out.itemsize
    start = values.offset * width
    out.frombytes(memoryview(values.buffers()[1])[start : start + len(values) * width])
    if sys.byteorder == "little":
        out.byteswap()
    return out.tobytes()


def _values(data: bytes, offsets: pa.Array) -> pa.Array:
    """`data` cut at `offsets` (n + 1 of them) into a large_binary array."""
    return pa.Array.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, offsets.buffers()[1], pa.py_buffer(data)]
    )


def _offsets(sizes: pa.Array) -> pa.Array:
    """The n + 1 offsets of n values of these sizes (int64)."""
    return pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(sizes)])


def _strided(rows: int, width: int) -> pa.Array:
    return _offsets(pa.repeat(pa.scalar(width, pa.int64()), rows))


def _binary_fields(column: pa.Array, sa_type: sa.types.TypeEngine, stride4: pa.Array) -> list[Any]:
    """One column of a binary COPY: each value's length (-1: null) and its bytes."""
    valid = pc.is_valid(column)
    if type(sa_type) is sa.Text:
        lengths = pc.binary_length(column).cast(pa.int32()).fill_null(-1)
        data = column.cast(pa.large_binary()).fill_null(b"")
        return [_values(_big_endian(lengths, "i"), stride4), data]
    arrow_type, typecode = _FIXED[type(sa_type)]
    if type(sa_type) is sa.DateTime:
        column = pc.subtract(column.cast(pa.int64()), _PG_EPOCH_MICROSECONDS)
    width = arrow_type.byte_width
    data = _big_endian(column.cast(arrow_type).drop_null(), typecode)
    if not column.null_count:
        length = pa.scalar(width.to_bytes(4, "big"), pa.large_binary())
        return [length, _values(data, _strided(len(column), width))]
    lengths = pc.if_else(valid, pa.scalar(width, pa.int32()), pa.scalar(-1, pa.int32()))
    sizes = pc.if_else(valid, pa.scalar(width, pa.int64()), pa.scalar(0, pa.int64()))
    return [_values(_big_endian(lengths, "i"), stride4), _values(data, _offsets(sizes))]


def _binary_rows(piece: pa.RecordBatch, columns: list[sa.Column]) -> memoryview:
    """Rows of a binary COPY: a field count, then each field's length and bytes, put
    together by Arrow (no Python object per value)."""
    stride4 = _strided(piece.num_rows, 4)
    fields: list[Any] = [pa.scalar(len(columns).to_bytes(2, "big"), pa.large_binary())]
    for values, column in zip(piece.columns, columns, strict=True):
        fields += _binary_fields(values, column.type, stride4)
    rows = pc.binary_join_element_wise(*fields, pa.scalar(b"", pa.large_binary()))
    offsets = pa.Array.from_buffers(
        pa.int64(), len(rows) + 1, [None, rows.buffers()[1]], offset=rows.offset
    )
    return memoryview(rows.buffers()[2])[offsets[0].as_py() : offsets[-1].as_py()]


def _copy(cur: Any, table: str, columns: list[sa.Column], rows: pa.Table) -> None:
    """COPY an Arrow table in, encoded by Arrow (no Python object per value): in
    PostgreSQL's binary format when the columns allow (the server then parses no
    text: a quarter less of its time than CSV), else as CSV (a null is an empty
    field, an empty string a quoted one, as PostgreSQL reads them). Sent a piece at
    a time, so that the server parses one while Arrow writes the next."""
    if not rows.num_rows:
        return
    binary = _binary(columns)
    names = ", ".join(f'"{c.name}"' for c in columns)
    options = pacsv.WriteOptions(include_header=False, batch_size=COPY_ROWS)
    fmt = "binary" if binary else "csv"
    with cur.copy(f"copy {table} ({names}) from stdin with (format {fmt})") as copy:
        if binary:
            copy.write(_BINARY_HEADER)
        for piece in rows.to_batches(max_chunksize=COPY_ROWS):
            if not piece.num_rows:  # pyarrow's CSV writer (26.0) writes garbage for them
                continue
            if binary:
                copy.write(_binary_rows(piece, columns))
            else:
                sink = pa.BufferOutputStream()
                pacsv.write_csv(piece, sink, options)
                copy.write(memoryview(sink.getvalue()))
        if binary:
            copy.write(_BINARY_TRAILER)


def _temp_table(name: str) -> str:
    """`create temp table th_batch_<name>` with the raw table's columns spelled out:
    `(like raw.table)` needs SELECT on the raw table, which trackhouse_writer lacks."""
    dialect = postgresql.dialect()
    cols = ", ".join(f'"{c.name}" {c.type.compile(dialect=dialect)}' for c in _written(name))
    return f"create temp table th_batch_{name} ({cols}) on commit drop"


def _text_array(values: pa.ChunkedArray) -> str:
    """Strings (no nulls) as one PostgreSQL text[] literal, quoted by Arrow: psycopg
    takes ~0.1 s to adapt a Python list of 100,000 ids, value by value."""
    escaped = pc.replace_substring_regex(values, r'(["\\])', r"\\\1")
    quoted = pc.binary_join_element_wise('"', escaped, '"', "").combine_chunks()
    listed = pa.LargeListArray.from_arrays(pa.array([0, len(quoted)], pa.int64()), quoted)
    return "{" + pc.binary_join(listed, ",")[0].as_py() + "}"


def _copy_new(cur: Any, schema: str, tables: dict[str, pa.Table], sequence: int) -> int:
    """COPY the batch's events that the ledger does not hold yet straight into the raw
    tables, numbered `sequence`; the number of them. Called with the write lock held
    (`next_sequence`): no other writer adds a message id between the look-up of those
    already stored (read committed: it sees every batch committed before the lock was
    granted) and the COPY. A key stored some other way, or twice in the batch
    (the parsers keep one), makes the COPY fail with unique_violation: the caller
    then merges instead."""
    events = tables["events"]
    if events.num_rows:
        ids = events.column("message_id")
        # One probe of the ledger's key per id, the ids in order (neighbouring index
        # pages). Not `message_id = any(...)`: the planner reads that with a scan of
        # the whole ledger once it holds a few million rows, and it grows every load.
        stored = cur.execute(
            f"""select batch.id from unnest(%s::text[]) as batch (id)
            cross join lateral (
                select 1 from "{schema}".events as e where e.message_id = batch.id limit 1
            ) as found""",
            (_text_array(ids.take(pc.sort_indices(ids))),),
        ).fetchall()
        if stored:
            known = pa.array([row[0] for row in stored], pa.string())
            events = events.filter(pc.invert(pc.is_in(ids, value_set=known)))
    new_ids = events.column("message_id")
    for name, rows in tables.items():
        if name == "events":
            rows = events
        else:  # the rows of the events new here, as the merge writes them
            rows = rows.filter(pc.is_in(rows.column("event_id"), value_set=new_ids))
        sequenced = rows.append_column(
            LOAD_SEQUENCE, pa.repeat(pa.scalar(sequence, pa.int64()), rows.num_rows)
        )
        columns = [*_written(name), _TABLES[name].c[LOAD_SEQUENCE]]
        _copy(cur, f'"{schema}"."{name}"', columns, sequenced)
    return int(events.num_rows)


def _merge(cur: Any, schema: str, tables: dict[str, pa.Table], sequence: int) -> int:
    """Write the batch's new events through temporary tables and `insert ... on
    conflict do nothing`, which skips a key already stored in any raw table; the
    number of new events. Every row is written twice: ~2x the time of `_copy_new`."""
    for name, rows in tables.items():
        cur.execute(_temp_table(name))
        _copy(cur, f"th_batch_{name}", _written(name), rows)
    cur.execute("create temp table th_new (message_id text primary key) on commit drop")
    # Keys in sorted order: a writer that does not take the lock inserting the same
    # ones waits for this one, or this one for it, never both (no deadlock).
    cur.execute(
        f"""with inserted as (
            {_insert(schema, "events", sequence)}
            order by message_id
            on conflict (message_id) do nothing
            returning message_id
        )
        insert into th_new select message_id from inserted"""
    )
    new_events = int(cur.rowcount)
    for name in tables:
        if name != "events":
            cur.execute(
                f"""{_insert(schema, name, sequence)}
                where event_id in (select message_id from th_new)
                on conflict (event_id) do nothing"""
            )
    return new_events


def _write_postgres(conn: Any, schema: str, batch: Batch) -> WriteResult:
    tables = {name: batch_table(batch, name) for name in ("events", *_present(batch))}
    with conn.transaction(), conn.cursor() as cur:
        # From here to the commit one batch at a time (a transaction-scoped lock):
        # its load_sequence is then larger than that of every batch committed
        # before, so a dbt build that saw sequence n has seen all batches up to n;
        # and the ledger holds every message id of those batches, none of others.
        sequence = next_sequence(cur, schema, lock=True)
        try:
            with conn.transaction():  # a savepoint: a failed COPY keeps the lock
                new_events = _copy_new(cur, schema, tables, sequence)
        except Exception as exc:
            # A key already in a typed table but not in the ledger (a clean-up that
            # deleted ledger rows only), or written by something that does not take
            # the lock (a manual insert): the merge skips such keys row by row.
            if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
            new_events = _merge(cur, schema, tables, sequence)
        record_batch(cur.execute, schema, sequence, new_events)
        new_rejected = 0
        if batch.rejected:
            cur.execute(_temp_table("rejected"))
            _copy(cur, "th_batch_rejected", _written("rejected"), batch_table(batch, "rejected"))
            cur.execute(
                f"""insert into "{schema}".rejected
                select distinct on (rejected_id) * from th_batch_rejected
                order by rejected_id
                on conflict (rejected_id) do nothing"""
            )
            new_rejected = cur.rowcount
    conn.commit()
    return WriteResult(new_events, batch.event_count - new_events, new_rejected)
