"""The overview of a built warehouse: the latest months, conversions, top campaigns.

One set of read-only queries (SQLAlchemy Core, marts and `trackhouse_settings`
only) behind `trackhouse summary` and the previews on Dagster's asset pages, so
both always show the same numbers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

MONTH_COLUMNS = ("calendar_year_month", "registered_users", "activated_users", "active_users")
CAMPAIGN_COLUMNS = ("utm_source", "utm_campaign", "conversions")


def _table(schema: str, name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), schema=schema)


def latest_months(
    conn: sa.Connection, schema: str, limit: int = 1, *, table: str = "usage_calendar_monthly"
) -> list[dict[str, Any]]:
    """The newest `limit` calendar months of usage, oldest first (MONTH_COLUMNS)."""
    t = _table(schema, table, "period_start", *MONTH_COLUMNS)
    query = (
        sa.select(*(t.c[c] for c in MONTH_COLUMNS)).order_by(t.c.period_start.desc()).limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)][::-1]


def top_campaigns(
    conn: sa.Connection,
    schema: str,
    limit: int = 3,
    *,
    model: str = "last_touch",
    table: str = "conversion_attribution",
) -> list[dict[str, Any]]:
    """Sources/campaigns with the most conversions credited under `model`
    (CAMPAIGN_COLUMNS), most first; unattributed conversions are left out."""
    t = _table(schema, table, "attribution_model", "touchpoint_id", "utm_source", "utm_campaign")
    conversions = sa.func.count().label("conversions")
    query = (
        sa.select(t.c.utm_source, t.c.utm_campaign, conversions)
        .where(t.c.attribution_model == model, t.c.touchpoint_id.is_not(None))
        .group_by(t.c.utm_source, t.c.utm_campaign)
        .order_by(conversions.desc(), t.c.utm_source, t.c.utm_campaign)
        .limit(limit)
    )
    return [{**r._mapping, "conversions": int(r.conversions)} for r in conn.execute(query)]


def conversion_counts(
    conn: sa.Connection, schema: str, *, table: str = "conversions"
) -> dict[str, int]:
    """How many conversions there are, and how many of them are valid."""
    t = _table(schema, table, "is_valid")
    valid = sa.func.sum(sa.case((t.c.is_valid, 1), else_=0))
    total, valid_count = conn.execute(sa.select(sa.func.count(), valid).select_from(t)).one()
    return {"conversions": int(total), "valid_conversions": int(valid_count or 0)}


def report_timezone_name(conn: sa.Connection, schema: str) -> str | None:
    """The report time zone of the last `dbt build` (the `trackhouse_settings` mart),
    None before the first build."""
    if not sa.inspect(conn).has_table("trackhouse_settings", schema=schema):
        return None
    t = _table(schema, "trackhouse_settings", "report_timezone")
    value = conn.execute(sa.select(t.c.report_timezone).limit(1)).scalar()
    return None if value is None else str(value)
