"""What a person wants to see on an asset's page: row counts, the latest time, previews.

Read-only: the queries are built with SQLAlchemy Core (no SQL text), count or
preview what the marts already hold, and never transform anything. A missing
table or column (a mart still being written) gives a note instead of a failure:
metadata must never fail a run that built the data.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from trackhouse import overview
from trackhouse import schema as raw_schema
from trackhouse.engine import get_engine
from trackhouse.errors import TrackhouseError
from trackhouse.settings import Settings

log = logging.getLogger(__name__)

PREVIEW_ROWS = 12
TIME_TYPES = ("timestamp", "datetime", "date")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as a GitHub-flavoured markdown table (what Dagster renders on asset pages)."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            value = f"{value:,.2f}"
        elif isinstance(value, dt.datetime):
            value = value.isoformat(sep=" ", timespec="seconds")
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    if not rows:
        lines.append("| " + " | ".join(["(no rows)"] + [""] * (len(columns) - 1)) + " |")
    return "\n".join(lines)


def _time_value(value: Any) -> dg.MetadataValue | None:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # trackhouse stores UTC without a zone
            value = value.replace(tzinfo=dt.UTC)
        return dg.MetadataValue.timestamp(value)
    if isinstance(value, dt.date):
        return dg.MetadataValue.text(value.isoformat())
    return None


@contextmanager
def _reading(settings: Settings) -> Iterator[Any]:
    """A connection for the Core queries below: SQLAlchemy's, or on Spark (no
    SQLAlchemy engine) trackhouse.spark.ReadConnection, which runs the same statements."""
    if settings.is_spark:
        from trackhouse.spark import ReadConnection

        yield ReadConnection(settings)
        return
    with get_engine(settings).connect() as conn:
        yield conn


def _read_errors(settings: Settings) -> tuple[type[BaseException], ...]:
    """What a read of a table being written (or missing) raises on this target."""
    if settings.is_spark:
        from pyspark.errors import PySparkException

        return (TrackhouseError, PySparkException)
    return (sa.exc.SQLAlchemyError,)


# -- raw tables ---------------------------------------------------------------


def raw_table_metadata(settings: Settings) -> dict[str, dict[str, Any]]:
    """Per raw table: its row count and the time of its newest row (`occurred_at`;
    `received_at` for `rejected`)."""
    found: dict[str, dict[str, Any]] = {}
    with _reading(settings) as conn:
        for table in raw_schema.DATA_TABLES:
            time_name = "occurred_at" if "occurred_at" in table.c else "received_at"
            time_col = sa.column(time_name)
            query = sa.select(sa.func.count(), sa.func.max(time_col)).select_from(
                sa.table(table.name, time_col, schema=settings.raw_schema)
            )
            rows, latest = conn.execute(query).one()
            entry: dict[str, Any] = {"dagster/row_count": int(rows)}
            shown = _time_value(latest)
            if shown is not None:
                entry[f"latest {time_name}"] = shown
            found[table.name] = entry
    return found


# -- dbt models ---------------------------------------------------------------


def time_column(columns: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The first column the model's yml declares with a timestamp or date type."""
    for name, props in columns.items():
        data_type = str(props.get("data_type") or "").lower()
        if data_type.startswith(TIME_TYPES):
            return name
    return None


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    columns: tuple[str, ...]

    def table(self, *names: str) -> sa.TableClause:
        return sa.table(self.name, *(sa.column(n) for n in names), schema=self.schema)


def _top_campaigns(conn: sa.Connection, rel: Relation) -> str:
    rows = overview.top_campaigns(conn, rel.schema, PREVIEW_ROWS, table=rel.name)
    return markdown_table(rows, overview.CAMPAIGN_COLUMNS)


def _monthly_usage(conn: sa.Connection, rel: Relation) -> str:
    rows = overview.latest_months(conn, rel.schema, PREVIEW_ROWS, table=rel.name)
    return markdown_table(rows, overview.MONTH_COLUMNS)


@dataclass(frozen=True)
class Preview:
    label: str
    needs: tuple[str, ...]
    render: Callable[[sa.Connection, Relation], str]


# mart name -> the preview on its page
PREVIEWS: dict[str, Preview] = {
    "usage_calendar_monthly": Preview(
        "preview: monthly usage (last 12 months)",
        (
            "period_start",
            "calendar_year_month",
            "registered_users",
            "activated_users",
            "active_users",
        ),
        _monthly_usage,
    ),
    "conversion_attribution": Preview(
        "preview: top campaigns by last-touch conversions",
        ("attribution_model", "touchpoint_id", "utm_source", "utm_campaign"),
        _top_campaigns,
    ),
}


# -- engagement and multi-touch previews (issue 15) ----------------------------


def _retention_grid(conn: sa.Connection, rel: Relation) -> str:
    """The last 12 monthly sign-up cohorts x months since sign-up: share still active."""
    t = rel.table("grain", "cohort_start_date", "period_index", "cohort_users", "retention")
    cohorts = (
        sa.select(t.c.cohort_start_date)
        .where(t.c.grain == "month")
        .group_by(t.c.cohort_start_date)
        .order_by(t.c.cohort_start_date.desc())
        .limit(PREVIEW_ROWS)
        .subquery()
    )
    query = (
        sa.select(t.c.cohort_start_date, t.c.period_index, t.c.cohort_users, t.c.retention)
        .where(t.c.grain == "month", t.c.cohort_start_date.in_(sa.select(cohorts.c[0])))
        .order_by(t.c.cohort_start_date, t.c.period_index)
    )
    grid: dict[Any, dict[str, Any]] = {}
    periods: set[int] = set()
    for r in conn.execute(query):
        row = grid.setdefault(
            r.cohort_start_date, {"cohort": str(r.cohort_start_date)[:7], "users": r.cohort_users}
        )
        row[f"M{r.period_index}"] = f"{float(r.retention):.0%}"
        periods.add(int(r.period_index))
    columns = ["cohort", "users", *(f"M{i}" for i in sorted(periods))]
    return markdown_table(list(grid.values()), columns)


def _credits_by_channel(conn: sa.Connection, rel: Relation) -> str:
    """Valid conversions credited to each channel, one column per model."""
    t = rel.table("attribution_model", "channel", "credit", "is_valid")
    query = (
        sa.select(t.c.channel, t.c.attribution_model, sa.func.sum(t.c.credit).label("credited"))
        .where(t.c.is_valid)
        .group_by(t.c.channel, t.c.attribution_model)
        .order_by(t.c.channel, t.c.attribution_model)
    )
    table: dict[Any, dict[str, Any]] = {}
    models: list[str] = []
    for r in conn.execute(query):
        table.setdefault(r.channel, {"channel": r.channel})[r.attribution_model] = (
            f"{float(r.credited):,.1f}"
        )
        if r.attribution_model not in models:
            models.append(r.attribution_model)
    return markdown_table(list(table.values())[:PREVIEW_ROWS], ["channel", *sorted(models)])


PREVIEWS.update(
    {
        "retention_cohorts": Preview(
            "preview: retention by monthly sign-up cohort (share still active)",
            ("grain", "cohort_start_date", "period_index", "cohort_users", "retention"),
            _retention_grid,
        ),
        "attribution_credits": Preview(
            "preview: valid conversions credited per channel, by model",
            ("attribution_model", "channel", "credit", "is_valid"),
            _credits_by_channel,
        ),
    }
)


def model_metadata(settings: Settings, node: Mapping[str, Any]) -> dict[str, Any]:
    """Row count, newest time and (for some marts) a preview of a dbt model's table.

    Views are skipped (counting one runs its whole query), as dagster-dbt does."""
    materialized = node.get("config", {}).get("materialized")
    if node.get("resource_type") not in ("model", "seed") or materialized == "view":
        return {}
    columns: Mapping[str, Mapping[str, Any]] = node.get("columns") or {}
    rel = Relation(
        schema=str(node["schema"]),
        name=str(node.get("alias") or node["name"]),
        columns=tuple(columns),
    )
    found: dict[str, Any] = {}
    try:
        with _reading(settings) as conn:
            time_col = time_column(columns)
            t = rel.table(*([time_col] if time_col else []))
            selected = [sa.func.count()] + ([sa.func.max(t.c[time_col])] if time_col else [])
            row = conn.execute(sa.select(*selected).select_from(t)).one()
            found["dagster/row_count"] = int(row[0])
            if time_col:
                shown = _time_value(row[1])
                if shown is not None:
                    found[f"latest {time_col}"] = shown
            preview = PREVIEWS.get(rel.name)
            if preview is not None:
                missing = [c for c in preview.needs if columns and c not in columns]
                if missing:
                    found[preview.label] = dg.MetadataValue.md(
                        f"(not shown: the model has no column {', '.join(missing)})"
                    )
                else:
                    found[preview.label] = dg.MetadataValue.md(preview.render(conn, rel))
    except _read_errors(settings) as exc:
        log.warning("no metadata for %s.%s: %s", rel.schema, rel.name, exc)
        found["metadata note"] = dg.MetadataValue.text(f"could not read the table: {exc}")
    return found


def missing_previews(model_names: Iterable[str]) -> list[str]:
    """The marts with a preview that the dbt project does not (yet) have."""
    present = set(model_names)
    return sorted(name for name in PREVIEWS if name not in present)
