"""Usage reports: django-souvenirs' `calendar_monthly_usage`,
`customer_monthly/quarterly/yearly_usage` (here `subscription_usage`) and
`daily_usage`, at exact instants.

Each row counts, for its period [start, end):
- registered_users: users who joined before the period's end (`users.joined_at`);
- activated_users: those of them who are active (`users.is_active`);
- active_users: users with an activity event in the period (`activity.active_user_counts`).

Subscription periods start at the anchor instant and keep its local time of
day in the report time zone (`periods.iter_months`), as souvenirs does: an
anchor of 2010-01-24 22:00 gives [2010-01-24 22:00, 2010-02-24 22:00), ... The
last period is cut at `end` (default: the local midnight after as_of); periods
ending at or before `start` are left out. The marts (usage_subscription_periods,
usage_daily) keep to local dates; with an anchor at a local midnight the API
gives the marts' numbers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ..settings import Settings, load_settings
from . import fetch, relation
from .periods import (
    PERIOD_KINDS,
    Bound,
    QueryArgumentError,
    ReportClock,
    build_vars,
    check_kind,
    iter_days,
    iter_months,
    local_date,
    naive_utc,
    parse_date,
    report_clock,
    report_timezone,
    subscription_label,
    subscription_periods,
    to_local,
    to_local_date,
)

USERS = "users"
ACCOUNTS = "accounts"
ACTIVITY_HOURLY = "activity_hourly"

Period = tuple[datetime, datetime, dict[str, Any]]


def period_bounds(start: datetime, end: datetime, clock: ReportClock) -> dict[str, Any]:
    """The bound columns of a report row: UTC instants and local dates."""
    return {
        "period_start": naive_utc(start),
        "period_end": naive_utc(end),
        "period_start_date": start.astimezone(clock.tz).date(),
        "period_end_date": end.astimezone(clock.tz).date(),
    }


def registered_counts(
    ends: list[datetime], settings: Settings, account_id: str | None
) -> list[tuple[int, int]]:
    """(registered, activated) users who joined before each end (naive UTC):
    one running count over the joins and the ends, not a join per period. At
    the same instant an end sorts before a join (joined = 0 first): a user who
    joins at a period's end is not registered in it."""
    from .activity import member_filter

    if not ends:
        return []
    from .activity import timestamp_values

    values = timestamp_values([(end,) for end in ends])
    params: dict[str, Any] = {"account_id": account_id}
    sql = f"""
    with
    ends (period_index, period_end) as (values {values}),
    points as (
        select joined_at as point_at, 1 as joined,
            case when is_active then 1 else 0 end as activated,
            cast(null as integer) as period_index
        from {relation(USERS, settings)}
        where true{member_filter("user_id", account_id, settings)}
        union all
        select period_end as point_at, 0 as joined, 0 as activated, period_index
        from ends
    ),
    running as (
        select period_index,
            sum(joined) over ordered as registered_users,
            sum(activated) over ordered as activated_users
        from points
        window ordered as (
            order by point_at, joined, period_index rows between unbounded preceding and current row
        )
    )
    select period_index, registered_users, activated_users
    from running where period_index is not null order by period_index
    """
    rows = fetch(sql, params, settings)
    return [(int(r["registered_users"]), int(r["activated_users"])) for r in rows]


def usage_rows(
    periods: list[Period],
    settings: Settings,
    account_id: str | None,
) -> list[dict[str, Any]]:
    """Each period's fields with registered / activated / active users."""
    from .activity import active_user_counts

    bounds = [(naive_utc(s), naive_utc(e)) for s, e, _ in periods]
    active = active_user_counts(bounds, settings, account_id)
    registered = registered_counts([e for _, e in bounds], settings, account_id)
    return [
        {
            **fields,
            "registered_users": reg,
            "activated_users": act,
            "active_users": n,
        }
        for (_, _, fields), (reg, act), n in zip(periods, registered, active, strict=True)
    ]


def first_data_date(clock: ReportClock, settings: Settings, account_id: str | None) -> date | None:
    """The local date of the first join or activity (of an account's users)."""
    from .activity import member_filter

    sql = f"""
    select
        (select min(joined_at) from {relation(USERS, settings)}
            where true{member_filter("user_id", account_id, settings)}) as first_joined_at,
        (select min(first_active_at) from {relation(ACTIVITY_HOURLY, settings)}
            where true{member_filter("user_id", account_id, settings)}) as first_active_at
    """
    row = fetch(sql, {"account_id": account_id}, settings)[0]
    found = [clock.local_date(v) for v in row.values() if v is not None]
    return min(found) if found else None


def subscription_anchor(
    account_id: str | None = None,
    *,
    timezone: str | None = None,
    settings: Settings | None = None,
) -> datetime | None:
    """The default anchor (aware, report time zone): an account's
    subscription_start_at to the second; for the whole site the local midnight
    of var `subscription_start`, else of the date the first user joined (the
    anchors of the marts)."""
    settings = settings or load_settings()
    tz = report_timezone(settings, timezone)
    if account_id is not None:
        rows = fetch(
            f"select subscription_start_at from {relation(ACCOUNTS, settings)} "
            "where account_id = :account_id",
            {"account_id": account_id},
            settings,
        )
        if not rows:
            raise QueryArgumentError(
                f"account {account_id!r} is not known (no group call, record_account or "
                "traits.account_id names it); check the id, or load its events and rebuild."
            )
        return rows[0]["subscription_start_at"].replace(tzinfo=UTC).astimezone(tz)
    configured = build_vars(settings).get("subscription_start")
    if configured:
        return to_local(parse_date(configured, "var subscription_start"), tz)
    row = fetch(
        f"select min(joined_at) as first_joined_at from {relation(USERS, settings)}", {}, settings
    )
    first = row[0]["first_joined_at"] if row else None
    if first is None:
        return None
    return to_local(local_date(first, tz), tz)


def _anchor(
    subscription_start: Bound, account_id: str | None, clock: ReportClock, settings: Settings
) -> datetime | None:
    anchor = to_local(subscription_start, clock.tz, "subscription_start")
    if anchor is None:
        anchor = subscription_anchor(account_id, timezone=clock.tz.key, settings=settings)
    return anchor


def calendar_monthly_usage(
    start: Bound = None,
    end: Bound = None,
    *,
    account_id: str | None = None,
    timezone: str | None = None,
    as_of: date | str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Usage per calendar month in the report time zone, rows as in
    `usage_calendar_monthly`. `start` is taken back to its month's first day
    (default: the month of the first join or activity); `end` (exclusive,
    default: the local midnight after as_of) cuts the last month."""
    settings = settings or load_settings()
    clock = report_clock(settings, timezone, as_of)
    first = to_local_date(start, clock.tz, "start") or first_data_date(clock, settings, account_id)
    last = to_local(end, clock.tz, "end") or clock.end
    if first is None:
        return []
    periods = [
        (
            s,
            e,
            {
                **period_bounds(s, e, clock),
                "calendar_year_month": f"{s.year:04d}-{s.month:02d}",
                "calendar_year": s.year,
            },
        )
        for s, e in iter_months(clock.local(first.replace(day=1)), last)
    ]
    return usage_rows(periods, settings, account_id)


def subscription_usage(
    subscription_start: Bound = None,
    start: Bound = None,
    end: Bound = None,
    kind: str = "month",
    *,
    account_id: str | None = None,
    timezone: str | None = None,
    as_of: date | str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Usage per subscription period (`kind` month, quarter or year) from the
    anchor `subscription_start` to the second (default: `subscription_anchor`),
    rows as in `usage_subscription_periods`. Periods ending at or before
    `start` are left out; the last is cut at `end` (default: the local midnight
    after as_of); `start >= end` gives no rows."""
    check_kind(kind)
    settings = settings or load_settings()
    clock = report_clock(settings, timezone, as_of)
    anchor = _anchor(subscription_start, account_id, clock, settings)
    if anchor is None:
        return []
    lower = to_local(start, clock.tz, "start")
    upper = to_local(end, clock.tz, "end") or clock.end
    periods = [
        (
            s,
            e,
            {
                "account_id": account_id,
                "period_kind": kind,
                "period_index": index,
                **period_bounds(s, e, clock),
                "label": label,
            },
        )
        for index, s, e, label in subscription_periods(anchor, kind, upper, lower)
    ]
    return usage_rows(periods, settings, account_id)


def daily_usage(
    start: Bound = None,
    end: Bound = None,
    *,
    subscription_start: Bound = None,
    account_id: str | None = None,
    timezone: str | None = None,
    as_of: date | str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Usage per day of the subscription, rows as in `usage_daily`: days start
    at the anchor's local time of day (souvenirs' daily_usage: the days of each
    subscription month, labelled with that month, quarter and year). Days
    ending at or before `start` are left out; the last is cut at `end`
    (default: the local midnight after as_of). `account_id` counts that
    account's users (default anchor: its subscription start)."""
    settings = settings or load_settings()
    clock = report_clock(settings, timezone, as_of)
    anchor = _anchor(subscription_start, account_id, clock, settings)
    if anchor is None:
        return []
    lower = to_local(start, clock.tz, "start")
    upper = to_local(end, clock.tz, "end") or clock.end
    periods: list[Period] = []
    for month_offset, (month_start, month_end) in enumerate(iter_months(anchor, upper)):
        if lower is not None and month_end <= lower:
            continue
        labels = {f"{k}_label": subscription_label(month_offset, k) for k in PERIOD_KINDS}
        for s, e in iter_days(month_start, month_end):
            if lower is not None and e <= lower:
                continue
            periods.append(
                (
                    s,
                    e,
                    {
                        "usage_date": s.date(),
                        "period_start": naive_utc(s),
                        "period_end": naive_utc(e),
                        **labels,
                    },
                )
            )
    return usage_rows(periods, settings, account_id)
