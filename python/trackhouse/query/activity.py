"""Active users: django-souvenirs' `count_active_users`, exact for any instants.

Every count reads the marts: `activity_hourly` for the hours inside a window,
`activity_events` only for a user whose first and last event of an edge hour
(a window bound inside the hour) both fall outside the window, and `users` for
account members. So any window, to the second, counts the users with an
activity event in [start, end).

Bounds (`start`, `end`) may be:
- an aware datetime: that instant;
- a naive datetime, or an ISO string without an offset: wall-clock time in the
  report time zone (as Django's `make_aware` does with the current zone);
- a `date` or a 'YYYY-MM-DD' string: local midnight starting that date.

Period iteration and the report clock live in `periods`, usage reports in
`usage`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from ..settings import Settings, load_settings
from . import fetch, relation, text_type
from .periods import (
    GRAINS,
    PERIOD_KINDS,
    Bound,
    QueryArgumentError,
    ReportClock,
    add_months_clamped,
    check_grain,
    local_date,
    local_midnight,
    months_between_clamped,
    report_clock,
    report_timezone,
    subscription_label,
    subscription_periods,
    to_instant,
    to_local,
    to_local_date,
)
from .usage import (
    calendar_monthly_usage,
    daily_usage,
    period_bounds,
    subscription_anchor,
    subscription_usage,
)

__all__ = [
    "GRAINS",
    "PERIOD_KINDS",
    "QueryArgumentError",
    "ReportClock",
    "active_users_by_period",
    "add_months_clamped",
    "calendar_monthly_usage",
    "count_active_users",
    "daily_usage",
    "local_date",
    "local_midnight",
    "months_between_clamped",
    "report_clock",
    "report_timezone",
    "subscription_anchor",
    "subscription_label",
    "subscription_periods",
    "subscription_usage",
    "to_instant",
    "to_local_date",
]

ACTIVITY_HOURLY = "activity_hourly"
ACTIVITY_EVENTS = "activity_events"
USERS = "users"
ACCOUNTS = "accounts"
ACCOUNT_MEMBERSHIPS = "account_memberships"


def member_filter(column: str, account_id: str | None, settings: Settings) -> str:
    """` and <column> in (the users who ever belonged to the account)`, or
    nothing for the whole site. Counts then keep to the time of each
    membership (`membership_windows`)."""
    if account_id is None:
        return ""
    return (
        f" and {column} in (select user_id from {relation(ACCOUNT_MEMBERSHIPS, settings)} "
        "where account_id = :account_id)"
    )


def membership_windows(account_id: str | None, settings: Settings) -> str:
    """The `windows (period_index, user_id, window_start, window_end)` CTE body
    over a `periods` CTE: each period itself (user_id null) for the whole site;
    for an account, each period cut to each membership of the account
    (account_memberships: valid_from inclusive, valid_to exclusive, null =
    unbounded), so a user's activity counts for the account they belonged to
    at its time."""
    if account_id is None:
        return (
            f"select period_index, cast(null as {text_type(settings)}) as user_id, "
            "period_start as window_start, period_end as window_end from periods"
        )
    return f"""
        select p.period_index, m.user_id,
            case when m.valid_from is null or m.valid_from < p.period_start
                then p.period_start else m.valid_from end as window_start,
            case when m.valid_to is null or m.valid_to > p.period_end
                then p.period_end else m.valid_to end as window_end
        from periods as p
        inner join {relation(ACCOUNT_MEMBERSHIPS, settings)} as m
            on m.account_id = :account_id
            and (m.valid_from is null or m.valid_from < p.period_end)
            and (m.valid_to is null or m.valid_to > p.period_start)
    """


def timestamp_values(rows: Sequence[tuple[datetime, ...]]) -> str:
    """`(0, cast('...' as timestamp), ...), (1, ...)`: numbered rows of naive UTC
    timestamps as SQL literals (a report can have thousands of periods; bound
    parameters by the thousand are slow to bind on DuckDB)."""

    def literal(value: datetime) -> str:
        return f"cast('{value.isoformat(sep=' ')}' as timestamp)"

    return ", ".join(f"({i}, {', '.join(literal(v) for v in row)})" for i, row in enumerate(rows))


def active_user_counts(
    periods: Sequence[tuple[datetime | None, datetime | None]],
    settings: Settings,
    account_id: str | None = None,
) -> list[int]:
    """Distinct users with an activity event in each [start, end) (naive UTC;
    None = unbounded), in one query. With `account_id`, only activity while
    the user belonged to the account counts (each period is cut to each
    membership: `membership_windows`).

    An activity_hourly row that overlaps a window counts when its first or its
    last event is inside (always so for an hour wholly inside). Otherwise the
    window lies between the two, inside the hour, and the user's events of
    that hour decide (activity_events, read for those rows only).
    """
    if not periods:
        return []
    lowest, highest = datetime(1, 1, 1), datetime(9999, 12, 31)
    bounded = [(start or lowest, end or highest) for start, end in periods]
    values = timestamp_values(bounded)
    params: dict[str, Any] = {"account_id": account_id}
    params["lo"] = min(s for s, _ in bounded)
    params["hi"] = max(e for _, e in bounded)
    sql = f"""
    with
    periods (period_index, period_start, period_end) as (values {values}),
    hourly as (
        select user_id, hour_start, first_active_at, last_active_at
        from {relation(ACTIVITY_HOURLY, settings)}
        where last_active_at >= :lo and first_active_at < :hi
            {member_filter("user_id", account_id, settings)}
    ),
    windows as ({membership_windows(account_id, settings)}),
    overlapping as (
        select w.period_index, w.window_start, w.window_end, h.user_id,
            h.first_active_at >= w.window_start or h.last_active_at < w.window_end as is_inside
        from hourly as h
        inner join windows as w
            on h.last_active_at >= w.window_start and h.first_active_at < w.window_end
            {"and h.user_id = w.user_id" if account_id is not None else ""}
    ),
    edge_checked as (
        select distinct o.period_index, o.user_id
        from overlapping as o
        where not o.is_inside and exists (
            select 1 from {relation(ACTIVITY_EVENTS, settings)} as e
            where e.user_id = o.user_id
                and e.active_at >= o.window_start and e.active_at < o.window_end
        )
    ),
    active as (
        select period_index, user_id from overlapping where is_inside
        union
        select period_index, user_id from edge_checked
    ),
    counted as (
        select p.period_index, count(distinct a.user_id) as active_users
        from periods as p
        left join active as a on p.period_index = a.period_index
        group by p.period_index
    )
    select * from counted order by period_index
    """
    return [int(r["active_users"]) for r in fetch(sql, params, settings)]


def count_active_users(
    start: Bound = None,
    end: Bound = None,
    *,
    account_id: str | None = None,
    timezone: str | None = None,
    settings: Settings | None = None,
) -> int:
    """Distinct users with activity in [start, end), exact to the microsecond;
    either bound may be omitted. `account_id` counts that account's users."""
    settings = settings or load_settings()
    tz = report_timezone(settings, timezone)
    lower = to_instant(start, tz, "start")
    upper = to_instant(end, tz, "end")
    if lower is not None and upper is not None and upper <= lower:
        return 0
    return active_user_counts([(lower, upper)], settings, account_id)[0]


def active_users_by_period(
    grain: str = "day",
    start: Bound = None,
    end: Bound = None,
    *,
    account_id: str | None = None,
    timezone: str | None = None,
    as_of: date | str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Distinct active users per day, ISO week or calendar month in the report
    time zone, rows as in `active_users`. `start` is taken back to its period's
    start (default: the period of the first activity); `end` cuts the last
    period at that instant (default: the local midnight after as_of)."""
    check_grain(grain)
    settings = settings or load_settings()
    clock = report_clock(settings, timezone, as_of)
    first = to_local_date(start, clock.tz, "start")
    if first is None:
        sql = (
            f"select min(first_active_at) as first_active_at "
            f"from {relation(ACTIVITY_HOURLY, settings)} "
            f"where true{member_filter('user_id', account_id, settings)}"
        )
        found = fetch(sql, {"account_id": account_id}, settings)[0]["first_active_at"]
        if found is None:
            return []
        first = clock.local_date(found)
    last = to_local(end, clock.tz, "end") or clock.end
    if grain == "week":
        first -= timedelta(days=first.weekday())
    elif grain == "month":
        first = first.replace(day=1)
    periods = []
    period_start = clock.local(first)
    while period_start < last:
        day = period_start.date()
        if grain == "day":
            following = clock.local(day + timedelta(days=1))
        elif grain == "week":
            following = clock.local(day + timedelta(days=7))
        else:
            following = clock.local(add_months_clamped(day, 1))
        periods.append((period_start, min(following, last)))
        period_start = following
    counts = active_user_counts(
        [(to_instant(s, clock.tz), to_instant(e, clock.tz)) for s, e in periods],
        settings,
        account_id,
    )
    return [
        {"grain": grain, **period_bounds(s, e, clock), "active_users": n}
        for (s, e), n in zip(periods, counts, strict=True)
    ]
