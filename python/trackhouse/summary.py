"""`trackhouse summary`: what is in the warehouse, in a few lines a person can read."""

from __future__ import annotations

import contextlib
from typing import Any

import sqlalchemy as sa

from . import overview
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


def _scalar(conn: sa.Connection, sql: str) -> Any:
    return conn.execute(sa.text(sql)).scalar()


def collect(settings: Settings) -> dict[str, Any]:
    """What is loaded and built: raw row counts, mart row counts and the overview
    (latest month, conversions, top campaigns), as plain data (`--format json`)."""
    found: dict[str, Any] = {
        "target": settings.target,
        "duckdb_path": str(settings.duckdb_path) if settings.is_duckdb else None,
        "raw_tables": {},
        "marts": {},
        "latest_month": None,
        "conversions": None,
        "top_campaigns": [],
    }
    raw, mart = settings.raw_schema, settings.mart_schema
    if settings.is_spark:  # no SQLAlchemy engine: trackhouse.spark.ReadConnection
        from .spark import ReadConnection

        reading: Any = contextlib.nullcontext(ReadConnection(settings))
    else:
        reading = read_connection(settings)
    with reading as conn:
        names: dict[str, set[str]] = {}
        for schema in (raw, mart):
            if settings.is_spark:
                names[schema] = conn.table_names(schema)
                continue
            inspector = sa.inspect(conn)
            names[schema] = set(inspector.get_table_names(schema=schema)) | set(
                inspector.get_view_names(schema=schema)
            )

        def count(schema: str, name: str) -> int:
            return int(_scalar(conn, f'select count(*) from "{schema}"."{name}"'))

        found["raw_tables"] = {t: count(raw, t) for t in RAW_TABLES if t in names[raw]}
        found["marts"] = {m: count(mart, m) for m in MARTS if m in names[mart]}
        built = found["marts"]
        if "usage_calendar_monthly" in built:
            months = overview.latest_months(conn, mart, 1)
            found["latest_month"] = months[0] if months else None
        if "conversions" in built:
            found["conversions"] = overview.conversion_counts(conn, mart)
        if "conversion_attribution" in built:
            found["top_campaigns"] = overview.top_campaigns(conn, mart, 3)
    return found


def to_text(found: dict[str, Any]) -> str:
    """The summary in a few lines a person can read."""
    lines = [
        f"trackhouse on {found['target']}"
        + (f" ({found['duckdb_path']})" if found["duckdb_path"] else "")
    ]
    counts = found["raw_tables"]
    if "events" in counts:
        lines.append(
            f"events loaded: {counts.get('events', 0):,} "
            f"(rejected {counts.get('rejected', 0):,}); "
            + ", ".join(f"{t} {n:,}" for t, n in counts.items() if t not in ("events", "rejected"))
        )
    else:
        lines.append("no events loaded yet: run `trackhouse load FILE` or `make demo`")
    if found["marts"]:
        lines.append(
            "tables built: " + ", ".join(f"{m} ({n:,} rows)" for m, n in found["marts"].items())
        )
    else:
        lines.append("no marts yet: run `dbt build`")
    month = found["latest_month"]
    if month:
        lines.append(
            f"latest month {month['calendar_year_month']}: {month['registered_users']:,} "
            f"registered, {month['activated_users']:,} activated, "
            f"{month['active_users']:,} active users"
        )
    conversions = found["conversions"]
    if conversions:
        lines.append(
            f"conversions: {conversions['conversions']:,} "
            f"({conversions['valid_conversions']:,} valid)"
        )
    if found["top_campaigns"]:
        lines.append(
            "top campaigns (last touch): "
            + "; ".join(
                f"{c['utm_source'] or '-'} / {c['utm_campaign'] or '-'}: {c['conversions']:,}"
                for c in found["top_campaigns"]
            )
        )
    return "\n".join(lines)


def summary(settings: Settings) -> str:
    return to_text(collect(settings))
