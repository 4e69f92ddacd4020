"""`trackhouse summary`: what is in the warehouse, in a few lines a person can read."""

from __future__ import annotations

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


def _scalar(conn: sa.Connection, sql: str) -> Any:
    return conn.execute(sa.text(sql)).scalar()


def summary(settings: Settings) -> str:
    inspector_names: dict[str, set[str]] = {}
    lines = [
        f"trackhouse on {settings.target}"
        + (f" ({settings.duckdb_path})" if settings.is_duckdb else "")
    ]
    with read_connection(settings) as conn:
        inspector = sa.inspect(conn)
        for schema in (settings.raw_schema, settings.mart_schema):
            inspector_names[schema] = set(inspector.get_table_names(schema=schema)) | set(
                inspector.get_view_names(schema=schema)
            )
        raw, mart = settings.raw_schema, settings.mart_schema

        def has(schema: str, name: str) -> bool:
            return name in inspector_names[schema]

        def count(schema: str, name: str) -> int:
            return int(_scalar(conn, f'select count(*) from "{schema}"."{name}"'))

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
            row = conn.execute(
                sa.text(
                    f"select calendar_year_month, registered_users, activated_users, active_users "
                    f'from "{mart}".usage_calendar_monthly order by period_start desc limit 1'
                )
            ).first()
            if row:
                lines.append(
                    f"latest month {row[0]}: {row[1]:,} registered, {row[2]:,} activated, "
                    f"{row[3]:,} active users"
                )
        if "conversions" in names:
            row = conn.execute(
                sa.text(
                    f"select count(*), sum(case when is_valid then 1 else 0 end) "
                    f'from "{mart}".conversions'
                )
            ).first()
            if row:
                lines.append(f"conversions: {row[0]:,} ({row[1] or 0:,} valid)")
        if "conversion_attribution" in names:
            rows = conn.execute(
                sa.text(
                    f"select utm_source, utm_campaign, count(*) as n "
                    f'from "{mart}".conversion_attribution '
                    f"where attribution_model = 'last_touch' and touchpoint_id is not null "
                    f"group by utm_source, utm_campaign order by n desc, utm_source, utm_campaign "
                    f"limit 3"
                )
            ).all()
            if rows:
                lines.append(
                    "top campaigns (last touch): "
                    + "; ".join(f"{s or '-'} / {c or '-'}: {n:,}" for s, c, n in rows)
                )
    return "\n".join(lines)
