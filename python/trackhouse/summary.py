"""`trackhouse summary`: what is in the warehouse, in a few lines a person can read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from .engine import read_connection
from .settings import Settings

RAW_TABLES = (
    "events",
    "activity",
    "touchpoints",
    "conversion_events",
    "identity_links",
    "users",
    "accounts",
    "statistics",
    "rejected",
)
MARTS = (
    "activity_hourly",
    "active_users",
    "usage_calendar_monthly",
    "usage_daily",
    "usage_subscription_periods",
    "identities",
    "touchpoints",
    "conversions",
    "conversion_attribution",
    "attribution_credits",
    "statistics_by_date",
    "statistics_by_date_and_object",
)


Names = Callable[[str], set[str]]
Rows = Callable[[str], list[tuple[Any, ...]]]


@contextmanager
def _reader(settings: Settings) -> Iterator[tuple[Names, Rows]]:
    """(tables and views of a schema, rows of a query) on the target."""
    if settings.is_spark:
        from . import spark

        session = spark.session(settings)

        def spark_names(schema: str) -> set[str]:
            if not session.catalog.databaseExists(schema):
                return set()
            return {t.name for t in session.catalog.listTables(schema)}

        def spark_rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(row.values()) for row in spark.fetch(settings, sql)]

        yield spark_names, spark_rows
        return
    with read_connection(settings) as conn:
        inspector = sa.inspect(conn)

        def names(schema: str) -> set[str]:
            return set(inspector.get_table_names(schema=schema)) | set(
                inspector.get_view_names(schema=schema)
            )

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in conn.execute(sa.text(sql)).all()]

        yield names, rows


def summary(settings: Settings) -> str:
    inspector_names: dict[str, set[str]] = {}
    lines = [
        f"trackhouse on {settings.target}"
        + (f" ({settings.duckdb_path})" if settings.is_duckdb else "")
    ]
    with _reader(settings) as (names_in, query):
        for schema in (settings.raw_schema, settings.mart_schema):
            inspector_names[schema] = names_in(schema)
        raw, mart = settings.raw_schema, settings.mart_schema

        def has(schema: str, name: str) -> bool:
            return name in inspector_names[schema]

        def count(schema: str, name: str) -> int:
            return int(query(f'select count(*) from "{schema}"."{name}"')[0][0])

        if has(raw, "events"):
            counts = {t: count(raw, t) for t in RAW_TABLES if has(raw, t)}
            lines.append(
                f"events loaded: {counts.get('events', 0):,} "
                f"(rejected {counts.get('rejected', 0):,}); "
                + ", ".join(
                    f"{t} {n:,}" for t, n in counts.items() if t not in ("events", "rejected")
                )
            )
        else:
            lines.append("no events loaded yet: run `trackhouse load FILE` or `make demo`")
        built = [(m, count(mart, m)) for m in MARTS if has(mart, m)]
        if built:
            lines.append("tables built: " + ", ".join(f"{m} ({n:,} rows)" for m, n in built))
        else:
            lines.append("no marts yet: run `dbt build`")
        names = {m for m, _ in built}
        if "usage_calendar_monthly" in names:
            row = next(
                iter(
                    query(
                        "select calendar_year_month, registered_users, activated_users, "
                        f'active_users from "{mart}".usage_calendar_monthly '
                        "order by period_start desc limit 1"
                    )
                ),
                None,
            )
            if row:
                lines.append(
                    f"latest month {row[0]}: {row[1]:,} registered, {row[2]:,} activated, "
                    f"{row[3]:,} active users"
                )
        if "conversions" in names:
            row = query(
                f"select count(*), sum(case when is_valid then 1 else 0 end) "
                f'from "{mart}".conversions'
            )[0]
            if row:
                lines.append(f"conversions: {row[0]:,} ({row[1] or 0:,} valid)")
        if "conversion_attribution" in names:
            rows = query(
                f"select utm_source, utm_campaign, count(*) as n "
                f'from "{mart}".conversion_attribution '
                f"where attribution_model = 'last_touch' and touchpoint_id is not null "
                f"group by utm_source, utm_campaign order by n desc, utm_source, utm_campaign "
                f"limit 3"
            )
            if rows:
                lines.append(
                    "top campaigns (last touch): "
                    + "; ".join(f"{s or '-'} / {c or '-'}: {n:,}" for s, c, n in rows)
                )
    return "\n".join(lines)
