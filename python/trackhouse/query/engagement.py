"""Engagement: retention cohorts, stickiness and lifecycle (beyond souvenirs).

These read the engagement marts (`retention_cohorts`, `stickiness_daily`,
`stickiness_monthly`, `lifecycle`), which dbt builds in the report time zone up
to `as_of`: the numbers are the marts' numbers, filtered and ordered for a
report. docs/engagement.md explains the definitions.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..errors import TrackhouseError, ValueErrorWithKnownValues
from ..settings import Settings, load_settings
from . import fetch, relation

RETENTION_GRAINS = ("week", "month")
LIFECYCLE_GRAINS = ("day", "week", "month")
LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")

RETENTION_COLUMNS = (
    "grain",
    "cohort_start_date",
    "period_index",
    "period_start_date",
    "period_end_date",
    "is_complete",
    "cohort_users",
    "active_users",
    "retention",
)
STICKINESS_COLUMNS = ("date_day", "dau", "wau", "mau", "dau_wau_ratio", "dau_mau_ratio")
ACTIVE_DAYS_COLUMNS = (
    "month_start_date",
    "month_end_date",
    "active_days",
    "users",
    "active_users",
    "user_share",
)
LIFECYCLE_COLUMNS = (
    "scope",
    "account_id",
    "grain",
    "period_start_date",
    "period_end_date",
    "status",
    "users",
)


class EngagementArgumentError(TrackhouseError, ValueError):
    """A date bound of an engagement query cannot be understood."""


def _date(value: date | str | None, name: str) -> date | None:
    if value is None or (isinstance(value, date) and not hasattr(value, "hour")):
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise EngagementArgumentError(
        f"{name} is {value!r}, but engagement reports take local dates: pass a date or "
        "'YYYY-MM-DD' (e.g. '2024-03-01')."
    )


def _between(column: str, start: date | None, end: date | None) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if start is not None:
        clauses.append(f"{column} >= :start")
        params["start"] = start
    if end is not None:
        clauses.append(f"{column} < :end")
        params["end"] = end
    return " and ".join(clauses), params


def retention(
    grain: str = "week",
    start: date | str | None = None,
    end: date | str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Retention cohorts by sign-up week or month: one row per cohort (whose
    start is in [start, end), local dates) and period since sign-up, with
    `cohort_users`, `active_users` and `retention` (their share), ordered by
    cohort and period. The rows of the `retention_cohorts` mart.

    >>> retention(grain="month", start="2024-01-01")
    """
    if grain not in RETENTION_GRAINS:
        raise ValueErrorWithKnownValues(
            "retention grain", grain, RETENTION_GRAINS, "Cohorts are by sign-up week or month."
        )
    settings = settings or load_settings()
    where, params = _between("cohort_start_date", _date(start, "start"), _date(end, "end"))
    params["grain"] = grain
    sql = f"""
        select {", ".join(RETENTION_COLUMNS)}
        from {relation("retention_cohorts", settings)}
        where grain = :grain {"and " + where if where else ""}
        order by cohort_start_date, period_index
    """
    return fetch(sql, params, settings)


def stickiness(
    start: date | str | None = None,
    end: date | str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """DAU, WAU, MAU and the ratios DAU/WAU and DAU/MAU per local day in
    [start, end): the rows of the `stickiness_daily` mart."""
    settings = settings or load_settings()
    where, params = _between("date_day", _date(start, "start"), _date(end, "end"))
    sql = f"""
        select {", ".join(STICKINESS_COLUMNS)}
        from {relation("stickiness_daily", settings)}
        {"where " + where if where else ""}
        order by date_day
    """
    return fetch(sql, params, settings)


def active_days_distribution(
    start: date | str | None = None,
    end: date | str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Per calendar month starting in [start, end): how many users were active
    on 1, 2, 3, ... days of it, and their share: the `stickiness_monthly` mart."""
    settings = settings or load_settings()
    where, params = _between("month_start_date", _date(start, "start"), _date(end, "end"))
    sql = f"""
        select {", ".join(ACTIVE_DAYS_COLUMNS)}
        from {relation("stickiness_monthly", settings)}
        {"where " + where if where else ""}
        order by month_start_date, active_days
    """
    return fetch(sql, params, settings)


def lifecycle(
    grain: str = "week",
    account_id: str | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """New, returning, resurrecting and dormant users (PostHog's definitions)
    per period of `grain` starting in [start, end): one row per period and
    status, 0 where the `lifecycle` mart has no row, for the whole site or,
    with `account_id`, for one account."""
    if grain not in LIFECYCLE_GRAINS:
        raise ValueErrorWithKnownValues(
            "lifecycle grain", grain, LIFECYCLE_GRAINS, "Pick one of them."
        )
    settings = settings or load_settings()
    where, params = _between("period_start_date", _date(start, "start"), _date(end, "end"))
    params["grain"] = grain
    if account_id is None:
        scope = "scope = 'site'"
    else:
        scope = "scope = 'account' and account_id = :account_id"
        params["account_id"] = account_id
    sql = f"""
        select {", ".join(LIFECYCLE_COLUMNS)}
        from {relation("lifecycle", settings)}
        where grain = :grain and {scope} {"and " + where if where else ""}
        order by period_start_date
    """
    found = fetch(sql, params, settings)
    periods: dict[date, dict[str, Any]] = {}
    for row in found:
        periods.setdefault(row["period_start_date"], row)
    rows = []
    counts = {(r["period_start_date"], r["status"]): r["users"] for r in found}
    for period_start, first in periods.items():
        for status in LIFECYCLE_STATUSES:
            rows.append(
                {
                    **first,
                    "status": status,
                    "users": int(counts.get((period_start, status), 0)),
                }
            )
    return rows
