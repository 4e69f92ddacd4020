"""The raw schema, owned by the Python package (SQLAlchemy Core).

Every table is keyed by the event id (a Segment `messageId`, or a generated id
for API calls) and carries `received_at`. Timestamps are UTC, stored without a
zone. `events` is the ledger of every accepted event with its original payload
(so fields trackhouse does not interpret are kept); the typed tables hold what
each event means. `rejected` holds what could not be accepted, with the reason.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn

from .settings import DEFAULT_RAW_SCHEMA

metadata = MetaData()

# Monetary and statistic values as received: 6 decimal places; dbt rounds to 2.
VALUE = Numeric(38, 6)


def _key() -> Column:
    return Column("event_id", Text, primary_key=True)


def _received() -> Column:
    return Column("received_at", DateTime, nullable=False)


# The batch that wrote a row, numbered in commit order (writer.py assigns it as
# the batch commits): incremental models pick up what a batch added by
# load_sequence > the largest one they have seen, which received_at cannot do
# (it is stamped before the write, and batches of one load commit one by one).
LOAD_SEQUENCE = "load_sequence"


def _sequence() -> Column:
    return Column(LOAD_SEQUENCE, BigInteger)


def _payload() -> Column:
    """The original line. On DuckDB it is stored with zstd: DuckDB's default for text
    (it analyses dictionary and FSST per segment at each commit) made the commit of
    100,000 lines of a Segment export ~0.3 s instead of ~0.16 s, on twice the disk; no
    model reads the payload, so its read speed matters little (bench/notes/load.md)."""
    return Column("payload", Text, nullable=False, info={"duckdb_compression": "zstd"})


@compiles(CreateColumn, "duckdb")
def _duckdb_column(element: CreateColumn, compiler, **kw) -> str:  # type: ignore[no-untyped-def]
    """`USING COMPRESSION …` for columns that name one in their `info` (DuckDB only)."""
    spec = compiler.visit_create_column(element, **kw)
    compression = element.element.info.get("duckdb_compression")
    return f"{spec} USING COMPRESSION {compression}" if compression and spec else spec


events = Table(
    "events",
    metadata,
    Column("message_id", Text, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Column("anonymous_id", Text),
    Column("user_id", Text),
    Column("source", Text, nullable=False),
    Column("line_number", Integer),
    _payload(),
    _received(),
    _sequence(),
    comment="Ledger of every accepted event with its original payload; the de-duplication key.",
)

activity = Table(
    "activity",
    metadata,
    _key(),
    Column("user_id", Text, nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    _received(),
    _sequence(),
    comment="One row per event that has a user id: that user was active at occurred_at.",
)

touchpoints = Table(
    "touchpoints",
    metadata,
    _key(),
    Column("anonymous_id", Text),
    Column("user_id", Text),
    Column("occurred_at", DateTime, nullable=False),
    Column("url", Text),  # null when only context.campaign made it a touchpoint
    Column("referrer", Text),
    Column("user_agent", Text),
    Column("campaign", Text),  # context.campaign as JSON text, when set
    _received(),
    _sequence(),
    comment="Page views that carry tracking parameters, url/referrer/user agent as received.",
)

conversion_events = Table(
    "conversion_events",
    metadata,
    _key(),
    Column("conversion_id", Text, nullable=False),
    Column("event", Text),  # null on an update by id (confirm / deactivate / correct)
    Column("anonymous_id", Text),
    Column("user_id", Text),
    Column("occurred_at", DateTime, nullable=False),
    Column("value", VALUE),
    Column("currency", Text),
    Column("is_confirmed", Boolean),  # null = not stated by this event
    Column("is_active", Boolean),
    Column("custom_data", Text),
    Column("source_object", Text),
    _received(),
    _sequence(),
    comment="Every state update of a conversion is a row; dbt folds them per conversion_id.",
)

identity_links = Table(
    "identity_links",
    metadata,
    _key(),
    Column("anonymous_id", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("link_type", Text, nullable=False),  # identify | alias
    Column("occurred_at", DateTime, nullable=False),
    _received(),
    _sequence(),
    comment="An anonymous id (or previous id) seen together with a user id.",
)

users = Table(
    "users",
    metadata,
    _key(),
    Column("user_id", Text, nullable=False),
    Column("date_joined", DateTime),
    Column("is_active", Boolean),
    Column("account_id", Text),
    Column("occurred_at", DateTime, nullable=False),
    _received(),
    _sequence(),
    comment="User traits as stated at occurred_at; null = not stated (latest stated wins).",
)

accounts = Table(
    "accounts",
    metadata,
    _key(),
    Column("account_id", Text, nullable=False),
    Column("user_id", Text),
    Column("subscription_start", DateTime),
    Column("name", Text),
    Column("occurred_at", DateTime, nullable=False),
    _received(),
    _sequence(),
    comment="Account (group) calls: membership of a user and the account's traits.",
)

statistics = Table(
    "statistics",
    metadata,
    _key(),
    Column("metric", Text, nullable=False),
    Column("value", VALUE, nullable=False),
    Column("period", Text, nullable=False),
    Column("statistic_date", Date, nullable=False),
    Column("object_type", Text),
    Column("object_id", Text),
    Column("occurred_at", DateTime, nullable=False),
    _received(),
    _sequence(),
    comment="Recorded statistics (record_statistic / NDJSON `statistic`); latest per key wins.",
)

rejected = Table(
    "rejected",
    metadata,
    Column("rejected_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("line_number", Integer),
    _payload(),
    Column("reason", Text, nullable=False),
    _received(),
    comment="Input that was not accepted: the original payload, where it came from, and why.",
)

batches = Table(
    "batches",
    metadata,
    Column(LOAD_SEQUENCE, BigInteger, primary_key=True, autoincrement=False),
    Column("committed_at", DateTime, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    comment="One row per written batch, numbered in commit order (the load_sequence of its rows).",
)

# Privacy (privacy.py, docs/privacy.md). None of them holds a clear id.
deletion_requests = Table(
    "deletion_requests",
    metadata,
    Column("request_id", Text, primary_key=True),
    Column("requested_at", DateTime, nullable=False),
    Column("ids_hash", Text, nullable=False),  # keyed hash of the sorted ids asked
    Column("id_count", Integer, nullable=False),  # user ids asked
    Column("linked_id_count", Integer, nullable=False),  # anonymous ids found linked to them
    Column("rows_deleted", Integer, nullable=False),
    Column("rows_by_table", Text, nullable=False),  # JSON: {"touchpoints": 3, ...}
    comment="Log of `trackhouse forget` requests: when, how many ids, rows per table; no ids.",
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id_hash", Text, primary_key=True),  # keyed hash (privacy.hash_id) of the id
    Column("id_kind", Text, nullable=False),  # user | anonymous
    Column("key_id", Text, nullable=False),  # which key made id_hash
    Column("request_id", Text, nullable=False),
    Column("suppressed_at", DateTime, nullable=False),
    comment="Forgotten ids, as keyed hashes: the loader rejects their events (reason suppressed).",
)

privacy_key = Table(
    "privacy_key",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("key_hex", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    comment="The hashing key, generated once when TRACKHOUSE_PRIVACY_KEY is not set.",
)

id_hashing = Table(
    "id_hashing",
    metadata,
    Column("key_id", Text, primary_key=True),  # privacy._key_id of the key ids are hashed with
    Column("enabled_at", DateTime, nullable=False),
    comment="Set once when ids are hashed at ingestion (TRACKHOUSE_HASH_IDS): with which key.",
)

PRIVACY_TABLES = (deletion_requests, suppressions, privacy_key, id_hashing)

# The typed tables an event can land in, in write order (ledger first).
EVENT_TABLES = (
    activity,
    touchpoints,
    conversion_events,
    identity_links,
    users,
    accounts,
    statistics,
)
# What was received (every row stamped with received_at and load_sequence) ...
DATA_TABLES = (events, *EVENT_TABLES, rejected)
# ... and the bookkeeping of the writes (one row per committed batch).
ALL_TABLES = (*DATA_TABLES, batches)


def columns(table: Table) -> list[str]:
    return [c.name for c in table.columns]


# PostgreSQL indexes on the raw tables, for what the incremental models filter on:
# the batch number (`coalesce(load_sequence, 0)`, as the staging models read it),
# received_at, and the keys the models join on. (DuckDB prunes by zone maps.)
def raw_indexes(schema: str) -> dict[str, str]:
    """Index name -> `create index` statement, for one raw schema."""
    wanted: list[tuple[str, str, str]] = []
    for table in (events, *EVENT_TABLES):
        wanted.append((table.name, "load_sequence", f"(coalesce({LOAD_SEQUENCE}, 0))"))
        wanted.append((table.name, "received_at", "(received_at)"))
    wanted += [
        ("identity_links", "anonymous_id_user_id", "(anonymous_id, user_id)"),
        ("conversion_events", "conversion_id", "(conversion_id)"),
        ("users", "user_id", "(user_id)"),
        ("accounts", "account_id", "(account_id)"),
    ]
    return {
        f"th_{table}_{name}_idx": (
            f'create index if not exists "th_{table}_{name}_idx" on "{schema}"."{table}" {cols}'
        )
        for table, name, cols in wanted
    }


def _present(conn: Connection, schema: str) -> dict[str, set[str]]:
    """The columns of each table of the schema (one catalog query)."""
    rows = conn.execute(
        text(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = :schema"
        ),
        {"schema": schema},
    ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def init_schema(engine: Engine, schema: str = DEFAULT_RAW_SCHEMA) -> None:
    """Create the raw schema, tables and (PostgreSQL) indexes; safe to call any
    number of times, and cheap once they are there (one catalog query)."""
    with engine.begin() as conn:
        present = _present(conn, schema)
        complete = all(t.name in present for t in metadata.tables.values()) and all(
            LOAD_SEQUENCE in present[t.name] for t in (events, *EVENT_TABLES)
        )
        if not complete:
            _create(conn, schema)
        if engine.dialect.name == "postgresql":
            existing = {
                r[0]
                for r in conn.execute(
                    text("select indexname from pg_indexes where schemaname = :schema"),
                    {"schema": schema},
                )
            }
            # Only what is missing: `create index if not exists` needs to own the
            # table even when the index is there, which trackhouse_writer does not.
            for name, statement in raw_indexes(schema).items():
                if name not in existing:
                    conn.execute(text(statement))


def _create(conn: Connection, schema: str) -> None:
    # `create schema if not exists` needs CREATE on the database even when the
    # schema exists, a right the trackhouse_writer role does not have (roles.py).
    if not inspect(conn).has_schema(schema):
        conn.execute(text(f'create schema if not exists "{schema}"'))
    metadata.create_all(conn.execution_options(schema_translate_map={None: schema}))
    # Raw tables created before load_sequence existed get the column (rows: null).
    for table in (events, *EVENT_TABLES):
        names = {c["name"] for c in inspect(conn).get_columns(table.name, schema=schema)}
        if LOAD_SEQUENCE not in names:
            conn.execute(
                text(f'alter table "{schema}"."{table.name}" add column {LOAD_SEQUENCE} bigint')
            )
