"""Activity and usage: django-souvenirs' `count_active_users` and usage reports.

Every function computes in SQL for the bounds it is given, reading
`activity_hourly` and the user dimension (`int_users_resolved`), so any window,
any subscription anchor and any account can be asked for. With the settings a
`dbt build` used (report time zone, `as_of`, the anchor), the numbers are the
marts' numbers: the period logic mirrors the dbt macros in macros/activity.

Bounds (`start`, `end`, `subscription_start`) may be:
- an aware datetime: that instant;
- a naive datetime, or an ISO string without an offset: wall-clock time in the
  report time zone (as Django's `make_aware` does with the current zone);
- a `date` or a 'YYYY-MM-DD' string: local midnight starting that date.
`count_active_users` takes them as instants. Usage reports count whole local
days: a start is taken back to the local midnight before it, an end forward to
the local midnight after it (an end at a midnight stays).
"""

from __future__ import annotations

import argparse
import calendar
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from ..errors import ConfigError, TrackhouseError, ValueErrorWithKnownValues
from ..output import FORMATS, render
from ..settings import Settings, load_settings
from . import fetch, relation

Bound = datetime | date | str | None

PERIOD_KINDS = {"month": 1, "quarter": 3, "year": 12}
GRAINS = ("day", "week", "month")

ACTIVITY_HOURLY = "activity_hourly"
USERS = "int_users_resolved"
ACCOUNTS = "int_accounts_resolved"


class QueryArgumentError(TrackhouseError, ValueError):
    """A query argument (a bound, a time zone) cannot be understood."""


# -- settings: the dbt vars the marts were built with --------------------------
def _build_vars(settings: Settings) -> dict[str, Any]:
    """The vars the marts were built with: the `trackhouse_settings` mart (it
    records them, also when they came from `dbt build --vars`); before the first
    build, none (the defaults: UTC, today). trackhouse never reads dbt's files."""
    try:
        rows = fetch(f"select * from {relation('trackhouse_settings', settings)}", None, settings)
    except (TrackhouseError, sa.exc.DBAPIError):
        rows = []
    if not rows:
        return {}
    built = rows[0]
    return {
        "report_timezone": built["report_timezone"],
        # The build's as_of (var, or its today): the marts end there, so do reports.
        "as_of": built["as_of_date"],
        "subscription_start": built["subscription_start"],
    }


@dataclass(frozen=True)
class ReportClock:
    """The report time zone and the last reported date, as the marts use them."""

    tz: ZoneInfo
    as_of: date

    @property
    def end_date(self) -> date:
        """The exclusive end of every report: the day after as_of."""
        return self.as_of + timedelta(days=1)

    def midnight(self, day: date) -> datetime:
        return local_midnight(day, self.tz)

    def local_date(self, instant: datetime) -> date:
        return local_date(instant, self.tz)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant (naive) at which `day` starts in time zone `tz`."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The date in `tz` of a naive-UTC or aware instant."""
    aware = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    return aware.astimezone(tz).date()


def report_timezone(settings: Settings, timezone: str | None = None) -> ZoneInfo:
    """`timezone`, else the last build's `report_timezone` (trackhouse_settings), else UTC."""
    name = timezone or _build_vars(settings).get("report_timezone") or "UTC"
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"report time zone {name!r} is not an IANA time zone; use a name such as "
            "'UTC', 'Europe/Amsterdam' or 'America/New_York'."
        ) from None


def report_clock(
    settings: Settings,
    timezone: str | None = None,
    as_of: date | str | None = None,
) -> ReportClock:
    """Defaults: the last build's `report_timezone` and `as_of` (trackhouse_settings)
    (as_of unset = today in the report time zone), exactly as the models."""
    tz = report_timezone(settings, timezone)
    if as_of is None:
        as_of = _build_vars(settings).get("as_of")
    if as_of is None:
        as_of_date = datetime.now(tz).date()
    elif isinstance(as_of, date) and not isinstance(as_of, datetime):
        as_of_date = as_of
    else:
        as_of_date = _parse_date(as_of, "as_of")
    return ReportClock(tz=tz, as_of=as_of_date)


def _parse_date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise QueryArgumentError(
            f"{name} {value!r} is not a date; write it as YYYY-MM-DD"
        ) from None


# -- bounds --------------------------------------------------------------------
def _parse_bound(value: Bound, tz: ZoneInfo, name: str) -> datetime | date | None:
    """A bound as an aware datetime, or a date (= local midnight)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    raise QueryArgumentError(
        f"{name} {value!r} is not a date or time; give a datetime, a date, or an ISO 8601 "
        "string such as 2024-05-01, 2024-05-01T12:00:00 (report time zone) or "
        "2024-05-01T12:00:00Z"
    )


def to_instant(value: Bound, tz: ZoneInfo, name: str = "bound") -> datetime | None:
    """A bound as a naive UTC datetime (what the tables store)."""
    parsed = _parse_bound(value, tz, name)
    if parsed is None:
        return None
    if isinstance(parsed, datetime):
        return parsed.astimezone(UTC).replace(tzinfo=None)
    return local_midnight(parsed, tz)


def to_local_date(
    value: Bound, tz: ZoneInfo, name: str = "bound", *, round_up: bool = False
) -> date | None:
    """A bound as a local date: the day it falls in, or with `round_up` the
    first local midnight at or after it."""
    parsed = _parse_bound(value, tz, name)
    if parsed is None:
        return None
    if not isinstance(parsed, datetime):
        return parsed
    local = parsed.astimezone(tz)
    day = local.date()
    if round_up and local.replace(tzinfo=None) != datetime.combine(day, time()):
        day += timedelta(days=1)
    return day


# -- period arithmetic (mirrors macros/activity) ----------------------------------
def add_months_clamped(anchor: date, months: int) -> date:
    """`anchor` + `months` months, the day clamped to the month's length; always
    from the anchor (Jan 31 -> Feb 29 -> Mar 31), never chained."""
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    day = min(anchor.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day)


def months_between_clamped(anchor: date, day: date) -> int:
    """The largest n with add_months_clamped(anchor, n) <= day."""
    months = (day.year - anchor.year) * 12 + day.month - anchor.month
    return months - 1 if add_months_clamped(anchor, months) > day else months


def subscription_label(month_offset: int, kind: str) -> str:
    """'Y01 M01', 'Y01 Q1' or 'Y01' for the period starting `month_offset`
    months after the anchor."""
    year = f"Y{month_offset // 12 + 1:02d}"
    if kind == "month":
        return f"{year} M{month_offset % 12 + 1:02d}"
    if kind == "quarter":
        return f"{year} Q{month_offset % 12 // 3 + 1}"
    return year


@dataclass(frozen=True)
class Period:
    start_date: date
    end_date: date  # exclusive
    fields: dict[str, Any]


def subscription_periods(
    anchor: date, kind: str, end_date: date, start_date: date | None = None
) -> Iterator[tuple[int, date, date, str]]:
    """(period_index, start, end, label) of the subscription periods from
    `anchor`, the last one cut at `end_date`; periods ending on or before
    `start_date` are skipped (numbering still counts from the anchor)."""
    step = PERIOD_KINDS[kind]
    offset = 0
    while (start := add_months_clamped(anchor, offset * step)) < end_date:
        end = min(add_months_clamped(anchor, (offset + 1) * step), end_date)
        if start_date is None or end > start_date:
            yield offset + 1, start, end, subscription_label(offset * step, kind)
        offset += 1


def _check_kind(kind: str) -> str:
    if kind not in PERIOD_KINDS:
        raise ValueErrorWithKnownValues(
            "period kind", kind, PERIOD_KINDS, "Pass kind='month', 'quarter' or 'year'."
        )
    return kind


def _check_grain(grain: str) -> str:
    if grain not in GRAINS:
        raise ValueErrorWithKnownValues(
            "grain", grain, GRAINS, "Pass grain='day', 'week' or 'month'."
        )
    return grain


# -- SQL -------------------------------------------------------------------------
def _local_date_sql(expr: str) -> str:
    """The report-time-zone date of a UTC timestamp column; :tz is bound.
    The same text works on DuckDB (icu) and PostgreSQL."""
    return f"cast((({expr}) at time zone 'UTC') at time zone :tz as date)"


def _member_filter(column: str, account_id: str | None, settings: Settings) -> str:
    if account_id is None:
        return ""
    return (
        f" and {column} in (select user_id from {relation(USERS, settings)} "
        "where account_id = :account_id)"
    )


def count_active_users(
    start: Bound = None,
    end: Bound = None,
    *,
    account_id: str | None = None,
    timezone: str | None = None,
    settings: Settings | None = None,
) -> int:
    """Distinct users with activity in [start, end); either bound may be omitted.

    Exact for bounds on whole UTC hours (the rate limit of record_activity keeps
    one event per user per UTC hour). A bound inside an hour is decided by that
    hour's first and last event. `account_id` counts that account's users only.
    """
    settings = settings or load_settings()
    tz = report_timezone(settings, timezone)
    lower = to_instant(start, tz, "start")
    upper = to_instant(end, tz, "end")
    if lower is not None and upper is not None and upper <= lower:
        return 0
    where = ["true"]
    if lower is not None:
        where.append("last_active_at >= :start")
    if upper is not None:
        where.append("first_active_at < :end")
    if lower is not None and upper is not None:
        where.append(
            "((first_active_at >= :start and first_active_at < :end)"
            " or (last_active_at >= :start and last_active_at < :end))"
        )
    sql = (
        "select count(distinct user_id) as active_users "
        f"from {relation(ACTIVITY_HOURLY, settings)} "
        f"where {' and '.join(where)}{_member_filter('user_id', account_id, settings)}"
    )
    params = {"start": lower, "end": upper, "account_id": account_id}
    return int(fetch(sql, params, settings)[0]["active_users"])


def _usage_counts(
    periods: Sequence[tuple[date, date]],
    clock: ReportClock,
    settings: Settings,
    account_id: str | None,
    *,
    with_registered: bool = True,
) -> list[dict[str, int]]:
    """registered / activated / active users for each local-date period [start, end).

    The same steps as the marts: activity_hourly rows become user-days in the
    report time zone (a row whose hour straddles a local midnight counts on the
    dates of its first and last event); a period counts the users with a day in
    it; registered = users with joined_at before the period's end.
    """
    if not periods:
        return []
    values = ", ".join(
        f"({i}, cast(:s{i} as date), cast(:e{i} as date))" for i in range(len(periods))
    )
    params: dict[str, Any] = {"tz": clock.tz.key, "account_id": account_id}
    for i, (start, end) in enumerate(periods):
        params[f"s{i}"], params[f"e{i}"] = start, end
    params["lo"] = clock.midnight(min(s for s, _ in periods))
    params["hi"] = clock.midnight(max(e for _, e in periods))
    hourly = relation(ACTIVITY_HOURLY, settings)
    users = relation(USERS, settings)
    registered_sql = (
        f"""
    members as (
        select is_active, {_local_date_sql("joined_at")} as joined_date
        from {users}
        where true{_member_filter("user_id", account_id, settings)}
    ),
    joins_by_date as (
        select joined_date, count(*) as joined_users,
            sum(case when is_active then 1 else 0 end) as joined_active_users
        from members group by joined_date
    ),
    registered as (
        select p.period_index,
            cast(coalesce(sum(j.joined_users), 0) as bigint) as registered_users,
            cast(coalesce(sum(j.joined_active_users), 0) as bigint) as activated_users
        from periods as p
        left join joins_by_date as j on j.joined_date < p.end_date
        group by p.period_index
    ),"""
        if with_registered
        else """
    registered as (
        select period_index, cast(0 as bigint) as registered_users,
            cast(0 as bigint) as activated_users
        from periods
    ),"""
    )
    sql = f"""
    with
    periods (period_index, start_date, end_date) as (values {values}),
    hourly as (
        select user_id, hour_start, first_active_at, last_active_at
        from {hourly}
        where last_active_at >= :lo and first_active_at < :hi
            {_member_filter("user_id", account_id, settings)}
    ),
    hours as (select distinct hour_start from hourly),
    hours_localized as (
        select hour_start,
            {_local_date_sql("hour_start")} as first_minute_date,
            {_local_date_sql("hour_start + interval '59 minutes'")} as last_minute_date
        from hours
    ),
    points as (
        select h.user_id,
            case when l.first_minute_date = l.last_minute_date then l.first_minute_date
                else {_local_date_sql("h.first_active_at")} end as activity_date
        from hourly as h inner join hours_localized as l on h.hour_start = l.hour_start
        union all
        select h.user_id, {_local_date_sql("h.last_active_at")} as activity_date
        from hourly as h inner join hours_localized as l on h.hour_start = l.hour_start
        where l.first_minute_date <> l.last_minute_date
    ),
    activity_days as (select distinct user_id, activity_date from points),
    dates as (select distinct activity_date from activity_days),
    date_periods as (
        select d.activity_date, p.period_index
        from dates as d
        inner join periods as p
            on d.activity_date >= p.start_date and d.activity_date < p.end_date
    ),
    active as (
        select dp.period_index, count(distinct a.user_id) as active_users
        from activity_days as a
        inner join date_periods as dp on a.activity_date = dp.activity_date
        group by dp.period_index
    ),{registered_sql}
    final as (
        select r.period_index, r.registered_users, r.activated_users,
            cast(coalesce(a.active_users, 0) as bigint) as active_users
        from registered as r
        left join active as a on r.period_index = a.period_index
    )
    select * from final order by period_index
    """
    rows = fetch(sql, params, settings)
    return [
        {k: int(r[k]) for k in ("registered_users", "activated_users", "active_users")}
        for r in rows
    ]


def _first_data_date(clock: ReportClock, settings: Settings, account_id: str | None) -> date | None:
    """The local date of the first join or activity (of an account's users)."""
    sql = f"""
    select
        (select min(joined_at) from {relation(USERS, settings)}
            where true{_member_filter("user_id", account_id, settings)}) as first_joined_at,
        (select min(first_active_at) from {relation(ACTIVITY_HOURLY, settings)}
            where true{_member_filter("user_id", account_id, settings)}) as first_active_at
    """
    row = fetch(sql, {"account_id": account_id}, settings)[0]
    found = [clock.local_date(v) for v in row.values() if v is not None]
    return min(found) if found else None


def subscription_anchor(
    account_id: str | None = None,
    *,
    timezone: str | None = None,
    settings: Settings | None = None,
) -> date | None:
    """The anchor the marts use: the account's subscription start, or for the
    whole site var `subscription_start`, else the date the first user joined."""
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
        return local_date(rows[0]["subscription_start_at"], tz)
    configured = _build_vars(settings).get("subscription_start")
    if configured:
        return _parse_date(configured, "var subscription_start")
    row = fetch(
        f"select min(joined_at) as first_joined_at from {relation(USERS, settings)}", {}, settings
    )
    first = row[0]["first_joined_at"] if row else None
    return local_date(first, tz) if first is not None else None


def _report(
    periods: list[Period],
    clock: ReportClock,
    settings: Settings,
    account_id: str | None,
    *,
    with_registered: bool = True,
) -> list[dict[str, Any]]:
    counts = _usage_counts(
        [(p.start_date, p.end_date) for p in periods],
        clock,
        settings,
        account_id,
        with_registered=with_registered,
    )
    rows = []
    for period, usage in zip(periods, counts, strict=True):
        if not with_registered:
            usage = {"active_users": usage["active_users"]}
        rows.append({**period.fields, **usage})
    return rows


def _bounds(period_start: date, period_end: date, clock: ReportClock) -> dict[str, Any]:
    return {
        "period_start": clock.midnight(period_start),
        "period_end": clock.midnight(period_end),
        "period_start_date": period_start,
        "period_end_date": period_end,
    }


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
    (default: the month of the first join or activity); `end` is exclusive
    (default: the day after as_of) and cuts the last month."""
    settings = settings or load_settings()
    clock = report_clock(settings, timezone, as_of)
    first = to_local_date(start, clock.tz, "start") or _first_data_date(clock, settings, account_id)
    last = to_local_date(end, clock.tz, "end", round_up=True) or clock.end_date
    if first is None:
        return []
    periods = []
    month = first.replace(day=1)
    while month < last:
        month_end = min(add_months_clamped(month, 1), last)
        fields = {
            **_bounds(month, month_end, clock),
            "calendar_year_month": f"{month.year:04d}-{month.month:02d}",
            "calendar_year": month.year,
        }
        periods.append(Period(month, month_end, fields))
        month = add_months_clamped(month, 1)
    return _report(periods, clock, settings, account_id)


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
    """Usage per subscription period (`kind` month, quarter or year) anchored at
    `subscription_start` (its local date; default: the anchor the marts use for
    `account_id`, or for the whole site), rows as in `usage_subscription_periods`.
    Periods ending on or before `start` are left out; the last is cut at `end`
    (default: the day after as_of)."""
    _check_kind(kind)
    settings = settings or load_settings()
    clock = report_clock(settings, timezone, as_of)
    anchor = to_local_date(subscription_start, clock.tz, "subscription_start")
    if anchor is None:
        anchor = subscription_anchor(account_id, timezone=clock.tz.key, settings=settings)
    if anchor is None:
        return []
    lower = to_local_date(start, clock.tz, "start")
    upper = to_local_date(end, clock.tz, "end", round_up=True) or clock.end_date
    periods = [
        Period(
            s,
            e,
            {
                "account_id": account_id,
                "period_kind": kind,
                "period_index": index,
                **_bounds(s, e, clock),
                "label": label,
            },
        )
        for index, s, e, label in subscription_periods(anchor, kind, upper, lower)
    ]
    return _report(periods, clock, settings, account_id)


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
    """Usage per local day, rows as in `usage_daily` (which is for the whole
    site; `account_id` counts that account's users), labelled with the
    subscription month / quarter / year of the day (anchor: `subscription_start`,
    default as in subscription_usage; days before it have no labels).
    Default range: the anchor to as_of."""
    settings = settings or load_settings()
    clock = report_clock(settings, timezone, as_of)
    anchor = to_local_date(subscription_start, clock.tz, "subscription_start")
    if anchor is None:
        anchor = subscription_anchor(account_id, timezone=clock.tz.key, settings=settings)
    first = to_local_date(start, clock.tz, "start") or anchor
    last = to_local_date(end, clock.tz, "end", round_up=True) or clock.end_date
    if first is None:
        return []
    periods = []
    day = first
    while day < last:
        offset = months_between_clamped(anchor, day) if anchor and day >= anchor else None
        labels = {
            f"{kind}_label": None if offset is None else subscription_label(offset, kind)
            for kind in PERIOD_KINDS
        }
        next_day = day + timedelta(days=1)
        fields = {
            "usage_date": day,
            "period_start": clock.midnight(day),
            "period_end": clock.midnight(next_day),
            **labels,
        }
        periods.append(Period(day, next_day, fields))
        day = next_day
    return _report(periods, clock, settings, account_id)


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
    time zone, rows as in `active_users`. Default range: the period of the
    first activity to the day after as_of."""
    _check_grain(grain)
    settings = settings or load_settings()
    clock = report_clock(settings, timezone, as_of)
    first = to_local_date(start, clock.tz, "start")
    if first is None:
        sql = (
            f"select min(first_active_at) as first_active_at "
            f"from {relation(ACTIVITY_HOURLY, settings)} "
            f"where true{_member_filter('user_id', account_id, settings)}"
        )
        found = fetch(sql, {"account_id": account_id}, settings)[0]["first_active_at"]
        if found is None:
            return []
        first = clock.local_date(found)
    last = to_local_date(end, clock.tz, "end", round_up=True) or clock.end_date
    if grain == "week":
        first -= timedelta(days=first.weekday())
    elif grain == "month":
        first = first.replace(day=1)
    periods = []
    period_start = first
    while period_start < last:
        if grain == "day":
            following = period_start + timedelta(days=1)
        elif grain == "week":
            following = period_start + timedelta(days=7)
        else:
            following = add_months_clamped(period_start, 1)
        period_end = min(following, last)
        fields = {"grain": grain, **_bounds(period_start, period_end, clock)}
        periods.append(Period(period_start, period_end, fields))
        period_start = following
    return _report(periods, clock, settings, account_id, with_registered=False)


# -- command line ------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", help="inclusive start: 2024-05-01, 2024-05-01T12:00 or ...Z")
    p.add_argument("--end", help="exclusive end (same formats)")
    p.add_argument("--account", metavar="ID", help="only this account's users")
    p.add_argument("--timezone", help="report time zone (default: dbt var report_timezone)")
    p.add_argument("--as-of", help="last reported date, YYYY-MM-DD (default: dbt var as_of)")
    p.add_argument("--format", choices=FORMATS, default="table")


def _cmd_active_users(args: argparse.Namespace) -> int:
    settings = load_settings(args.target)
    if args.grain:
        rows = active_users_by_period(
            args.grain,
            args.start,
            args.end,
            account_id=args.account,
            timezone=args.timezone,
            as_of=args.as_of,
            settings=settings,
        )
    else:
        tz = report_timezone(settings, args.timezone)
        count = count_active_users(
            args.start, args.end, account_id=args.account, timezone=args.timezone, settings=settings
        )
        rows = [
            {
                "period_start": to_instant(args.start, tz, "start"),
                "period_end": to_instant(args.end, tz, "end"),
                "active_users": count,
            }
        ]
    print(render(rows, args.format))
    return 0


def _cmd_usage(args: argparse.Namespace) -> int:
    settings = load_settings(args.target)
    common = {
        "account_id": args.account,
        "timezone": args.timezone,
        "as_of": args.as_of,
        "settings": settings,
    }
    if args.calendar:
        rows = calendar_monthly_usage(args.start, args.end, **common)
    elif args.daily:
        rows = daily_usage(
            args.start, args.end, subscription_start=args.subscription_start, **common
        )
    else:
        if args.subscription_start is None and args.account is None:
            raise QueryArgumentError(
                "trackhouse query usage needs --calendar, --daily, or --subscription-start T "
                "(or --account ID to use that account's subscription start)"
            )
        rows = subscription_usage(
            args.subscription_start, args.start, args.end, args.kind, **common
        )
    print(render(rows, args.format))
    return 0


def add_cli(subparsers: Any) -> None:
    """`trackhouse query active-users` and `trackhouse query usage`."""
    p = subparsers.add_parser(
        "active-users",
        help="distinct active users in [start, end), or per day/week/month with --grain",
    )
    p.add_argument("--grain", choices=GRAINS, help="one row per period of this grain")
    _add_common(p)
    p.set_defaults(func=_cmd_active_users)

    p = subparsers.add_parser(
        "usage",
        help="registered / activated / active users per calendar month, subscription period or day",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--calendar", action="store_true", help="per calendar month")
    mode.add_argument("--daily", action="store_true", help="per day (labels from the anchor)")
    p.add_argument(
        "--subscription-start",
        metavar="T",
        help="subscription anchor (default with --account: the account's subscription start)",
    )
    p.add_argument("--kind", choices=tuple(PERIOD_KINDS), default="month")
    _add_common(p)
    p.set_defaults(func=_cmd_usage)
