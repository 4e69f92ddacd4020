"""Apache Spark as a target: the session, the raw tables (Parquet), writes and reads.

One SparkSession per process, built from the `spark` output of profiles.yml (its
`server_side_parameters`), the same settings dbt-spark's `method: session` uses, so
that when the loader, the query API and dbt run in one process they share it
(dbt-spark calls `SparkSession.builder.getOrCreate()`, which returns this one).
Separate processes (`trackhouse load`, then `dbt build`, then `trackhouse query`)
each start their own and run one after another: the embedded Derby metastore
admits one process at a time.

Raw tables are Parquet tables (no Delta/Iceberg: no transactions, no MERGE). A
batch arrives as Arrow tables (the same parser and rejects as the other targets),
becomes a Spark DataFrame (`createDataFrame(pyarrow.Table)`, no per-row Python),
and is de-duplicated by anti-joins on the key: the typed tables first, each only
with ids that are in neither the ledger nor itself, then the ledger (`events`)
last. A crash between the two leaves typed rows whose ids are not in the ledger;
loading the batch again inserts only the missing ledger rows, so every event
still lands exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .errors import ConfigError, TrackhouseError
from .parsing import Batch
from .schema import LOAD_SEQUENCE, metadata
from .settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from .writer import WriteResult

_lock = threading.Lock()
_created: set[tuple[str, str]] = set()

_SPARK_TYPES: list[tuple[type, str]] = [
    (sa.Text, "string"),
    (sa.DateTime, "timestamp_ntz"),
    (sa.Date, "date"),
    (sa.Boolean, "boolean"),
    (sa.Integer, "bigint"),  # BigInteger too
]


def _spark_type(column: sa.Column) -> str:
    if isinstance(column.type, sa.Numeric):
        return f"decimal({column.type.precision or 38},{column.type.scale or 0})"
    for sa_type, spark_type in _SPARK_TYPES:
        if isinstance(column.type, sa_type):
            return spark_type
    raise TypeError(f"no Spark type for {column.table.name}.{column.name} ({column.type})")


def session_conf(settings: Settings) -> dict[str, str]:
    """The session's settings: the profile's `server_side_parameters`, with the
    warehouse and metastore placed under `settings.spark_dir` (absolute)."""
    conf = {k: str(v) for k, v in (settings.output.get("server_side_parameters") or {}).items()}
    where = settings.spark_dir
    conf["spark.sql.warehouse.dir"] = str(where / "warehouse")
    conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
        f"jdbc:derby:;databaseName={where / 'metastore_db'};create=true"
    )
    conf["spark.driver.extraJavaOptions"] = f"-Dderby.system.home={where}"
    return conf


def session(settings: Settings) -> SparkSession:
    """This process's SparkSession (created on first use, with Hive catalog support)."""
    if not settings.is_spark:
        raise ConfigError(f"target {settings.target!r} is not a Spark target")
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is pinned
        raise ConfigError(
            "the spark target needs pyspark and a Java runtime: "
            'pip install "trackhouse[spark]" and apt-get install default-jre-headless'
        ) from exc
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        settings.spark_dir.mkdir(parents=True, exist_ok=True)
        builder = SparkSession.builder.enableHiveSupport()
        for key, value in session_conf(settings).items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        return spark


def ensure_raw_tables(settings: Settings) -> None:
    """Create the raw schema and its Parquet tables once per process."""
    key = (str(settings.spark_dir), settings.raw_schema)
    if key in _created:
        return
    spark = session(settings)
    schema = settings.raw_schema
    spark.sql(f"create database if not exists `{schema}`")
    for table in metadata.sorted_tables:
        cols = ", ".join(f"`{c.name}` {_spark_type(c)}" for c in table.columns)
        spark.sql(f"create table if not exists `{schema}`.`{table.name}` ({cols}) using parquet")
    _created.add(key)


def _frame(spark: SparkSession, settings: Settings, batch: Batch, name: str, seq: int) -> Any:
    """The batch's rows of one raw table in the table's column order and types, numbered
    with the batch's load_sequence."""
    from pyspark.sql import functions as F

    from .writer import batch_table

    target = spark.table(f"`{settings.raw_schema}`.`{name}`")
    df = spark.createDataFrame(batch_table(batch, name))
    # The table's column types (Arrow int64 -> bigint, naive timestamps -> timestamp_ntz).
    return df.select(
        [
            (F.lit(seq) if f.name == LOAD_SEQUENCE else df[f.name]).cast(f.dataType).alias(f.name)
            for f in target.schema.fields
        ]
    )


def write_batch(settings: Settings, batch: Batch) -> WriteResult:
    """Append the new rows of `batch` (by message id / rejected id); return what was new."""
    from .writer import WriteResult, _present

    ensure_raw_tables(settings)
    spark = session(settings)
    raw = settings.raw_schema
    seq = int(
        spark.sql(f"select coalesce(max({LOAD_SEQUENCE}), 0) + 1 from `{raw}`.`batches`").collect()[
            0
        ][0]
    )
    events = _frame(spark, settings, batch, "events", seq).dropDuplicates(["message_id"])
    ledger = spark.table(f"`{raw}`.`events`").select("message_id")
    new_ids = events.select("message_id").join(ledger, "message_id", "left_anti").localCheckpoint()
    for name in _present(batch):
        rows = _frame(spark, settings, batch, name, seq).dropDuplicates(["event_id"])
        have = spark.table(f"`{raw}`.`{name}`").select("event_id")
        rows = rows.join(new_ids.withColumnRenamed("message_id", "event_id"), "event_id", "semi")
        rows = rows.join(have, "event_id", "left_anti")
        rows.select(spark.table(f"`{raw}`.`{name}`").columns).write.insertInto(f"`{raw}`.`{name}`")
    new_events = new_ids.count()
    if new_events:
        fresh = events.join(new_ids, "message_id", "semi")
        fresh.select(spark.table(f"`{raw}`.`events`").columns).write.insertInto(f"`{raw}`.`events`")
    spark.sql(
        f"insert into `{raw}`.`batches` values ({seq}, "
        f"timestamp_ntz'{datetime.now(UTC).replace(tzinfo=None).isoformat(sep=' ')}', {new_events})"
    )
    new_rejected = 0
    if batch.rejected:
        rejected = _frame(spark, settings, batch, "rejected", seq).dropDuplicates(["rejected_id"])
        have = spark.table(f"`{raw}`.`rejected`").select("rejected_id")
        fresh = rejected.join(have, "rejected_id", "left_anti").localCheckpoint()
        new_rejected = fresh.count()
        if new_rejected:
            fresh.write.insertInto(f"`{raw}`.`rejected`")
    return WriteResult(new_events, batch.event_count - new_events, new_rejected)


def fetch(
    settings: Settings, sql: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run a read query (`:name` parameters, "double-quoted" identifiers as on the
    other targets); rows as dicts keyed by column name."""
    from pyspark.errors import AnalysisException

    spark = session(settings)
    with _lock:
        # dbt-spark turns ANSI mode off in the session; "double-quoted" identifiers need it.
        ansi = spark.conf.get("spark.sql.ansi.enabled")
        spark.conf.set("spark.sql.ansi.enabled", "true")
        spark.conf.set("spark.sql.ansi.doubleQuotedIdentifiers", "true")
        try:
            rows = spark.sql(sql, args=dict(params or {})).collect()
        except AnalysisException as exc:
            if "TABLE_OR_VIEW_NOT_FOUND" in str(exc) or "SCHEMA_NOT_FOUND" in str(exc):
                raise TrackhouseError(
                    f"a table this query needs is missing in {settings.target} "
                    f"({settings.mart_schema}); run `dbt build` (or `make build`) first.\n{exc}"
                ) from exc
            raise
        finally:
            spark.conf.unset("spark.sql.ansi.doubleQuotedIdentifiers")
            spark.conf.set("spark.sql.ansi.enabled", ansi)
    return [row.asDict() for row in rows]


def execute(settings: Settings, sql: str) -> None:
    """Run one statement (no rows)."""
    session(settings).sql(sql)


__all__ = ["ensure_raw_tables", "execute", "fetch", "session", "write_batch"]


def report_timezone_name(settings: Settings) -> str | None:
    """The report time zone of the last `dbt build` on Spark (overview.report_timezone_name
    for the other targets); None before the first build."""
    spark = session(settings)
    if not spark.catalog.tableExists(f"{settings.mart_schema}.trackhouse_settings"):
        return None
    rows = fetch(
        settings,
        f'select report_timezone from "{settings.mart_schema}"."trackhouse_settings" limit 1',
    )
    return str(rows[0]["report_timezone"]) if rows and rows[0]["report_timezone"] else None


class DriverConnection:
    """The part of a DB-API connection trackhouse's bulk paths use (`execute` then
    `fetchall`/`fetchone`), on the process's SparkSession: what `engine.raw_connection`
    yields on Spark. Parquet has no transactions: `commit`/`rollback` do nothing."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> DriverConnection:
        self._rows = [tuple(row.values()) for row in fetch(self.settings, sql, params)]
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


class _Row(tuple):  # type: ignore[type-arg]
    """A result row: a tuple with `_mapping` and attribute access (as SQLAlchemy's Row)."""

    _mapping: dict[str, Any]

    def __new__(cls, mapping: dict[str, Any]) -> _Row:
        row = super().__new__(cls, tuple(mapping.values()))
        row._mapping = mapping
        return row

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


class _Result(list):  # type: ignore[type-arg]
    def one(self) -> _Row:
        if len(self) != 1:
            raise TrackhouseError(f"expected one row, got {len(self)}")
        return self[0]  # type: ignore[no-any-return]

    def first(self) -> _Row | None:
        return self[0] if self else None

    def scalar(self) -> Any:
        return self[0][0] if self else None

    def all(self) -> list[_Row]:
        return list(self)


class ReadConnection:
    """The part of a SQLAlchemy connection the summary and overview use (`execute` of
    Core statements or text), on Spark: statements are compiled to SQL with the
    PostgreSQL dialect and literal values, then run with double-quoted identifiers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> _Result:
        from sqlalchemy.dialects import postgresql

        if isinstance(statement, sa.TextClause):
            sql = str(statement)
        else:
            sql = str(
                statement.compile(
                    dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                )
            )
        return _Result(_Row(row) for row in fetch(self.settings, sql, params))

    def table_names(self, schema: str) -> set[str]:
        catalog = session(self.settings).catalog
        if not catalog.databaseExists(schema):
            return set()
        return {t.name for t in catalog.listTables(schema)}
