"""Time for the query API: the report clock, bounds, and period iteration.

The report clock is what the last `dbt build` used (the `trackhouse_settings`
mart): the report time zone and `as_of`. Bounds given to the API become exact
instants; periods are iterated the way django-souvenirs' `souvenirs.utils`
iterates them: from an anchor instant, keeping its local time of day in the
report time zone (DST-correct: wall-clock arithmetic in the zone), each
boundary computed from the anchor with the day clamped to the month's length
(Jan 31 -> Feb 29 -> Mar 31), the last period cut at the end instant.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from ..errors import ConfigError, TrackhouseError, ValueErrorWithKnownValues
from ..settings import Settings
from . import fetch, relation

Bound = datetime | date | str | None

PERIOD_KINDS = {"month": 1, "quarter": 3, "year": 12}
GRAINS = ("day", "week", "month")


class QueryArgumentError(TrackhouseError, ValueError):
    """A query argument (a bound, a time zone) cannot be understood."""


# -- settings: the dbt vars the marts were built with --------------------------
def build_vars(settings: Settings) -> dict[str, Any]:
    """The vars of the last build, from the `trackhouse_settings` mart (it
    records them, also when they came from `dbt build --vars`); before the
    first build: none (UTC, today, no anchor)."""
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

    @property
    def end(self) -> datetime:
        """The default end of a report (aware): local midnight after as_of."""
        return self.local(self.end_date)

    def local(self, day: date) -> datetime:
        """Local midnight starting `day`, aware in the report time zone."""
        return datetime.combine(day, time(), tzinfo=self.tz)

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


def naive_utc(instant: datetime) -> datetime:
    """An aware instant as the tables store it: UTC without a zone."""
    return instant.astimezone(UTC).replace(tzinfo=None)


def report_timezone(settings: Settings, timezone: str | None = None) -> ZoneInfo:
    """`timezone`, else the last build's var `report_timezone`, else UTC."""
    name = timezone or build_vars(settings).get("report_timezone") or "UTC"
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
    """Defaults: the last build's `report_timezone` and `as_of` (unset: today
    in the report time zone), exactly as the marts."""
    tz = report_timezone(settings, timezone)
    if as_of is None:
        as_of = build_vars(settings).get("as_of")
    if as_of is None:
        as_of_date = datetime.now(tz).date()
    elif isinstance(as_of, date) and not isinstance(as_of, datetime):
        as_of_date = as_of
    else:
        as_of_date = parse_date(as_of, "as_of")
    return ReportClock(tz=tz, as_of=as_of_date)


def parse_date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise QueryArgumentError(
            f"{name} {value!r} is not a date; write it as YYYY-MM-DD"
        ) from None


# -- bounds --------------------------------------------------------------------
def parse_bound(value: Bound, tz: ZoneInfo, name: str) -> datetime | date | None:
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


def to_local(value: Bound, tz: ZoneInfo, name: str = "bound") -> datetime | None:
    """A bound as an aware datetime in `tz` (a date: its local midnight)."""
    parsed = parse_bound(value, tz, name)
    if parsed is None:
        return None
    if isinstance(parsed, datetime):
        return parsed.astimezone(tz)
    return datetime.combine(parsed, time(), tzinfo=tz)


def to_instant(value: Bound, tz: ZoneInfo, name: str = "bound") -> datetime | None:
    """A bound as a naive UTC datetime (what the tables store)."""
    local = to_local(value, tz, name)
    return None if local is None else naive_utc(local)


def to_local_date(value: Bound, tz: ZoneInfo, name: str = "bound") -> date | None:
    """A bound as the local date it falls in."""
    local = to_local(value, tz, name)
    return None if local is None else local.date()


# -- period arithmetic (souvenirs.utils; the dbt macros in macros/activity) -------
def add_months_clamped(anchor: date, months: int) -> date:
    """`anchor` + `months` months, the day clamped to the month's length; always
    from the anchor (Jan 31 -> Feb 29 -> Mar 31), never chained."""
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    day = min(anchor.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day)


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` + `months` months at the anchor's local time of day (its zone,
    wall clock), the day clamped to the month's length."""
    return datetime.combine(add_months_clamped(anchor.date(), months), anchor.timetz())


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


def iter_days(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(day_start, day_end) from `start` in steps of one local day (the same
    wall-clock time), the last cut at `end` (souvenirs.utils.iter_days)."""
    while start < end:
        following = min(start + timedelta(days=1), end)
        yield start, following
        start = following


def _iter_month_steps(
    start: datetime, end: datetime, step: int
) -> Iterator[tuple[datetime, datetime]]:
    n = 0
    while (period_start := add_months(start, n * step)) < end:
        yield period_start, min(add_months(start, (n + 1) * step), end)
        n += 1


def iter_months(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Months from `start` (its day of month and time of day, clamped), the last
    cut at `end` (souvenirs.utils.iter_months)."""
    yield from _iter_month_steps(start, end, 1)


def iter_quarters(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Quarters (three months) from `start`, the last cut at `end`."""
    yield from _iter_month_steps(start, end, 3)


def iter_years(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Years (twelve months) from `start`, the last cut at `end`."""
    yield from _iter_month_steps(start, end, 12)


def subscription_periods(
    anchor: datetime, kind: str, end: datetime, start: datetime | None = None
) -> Iterator[tuple[int, datetime, datetime, str]]:
    """(period_index, start, end, label) of the subscription periods from the
    `anchor` instant, the last cut at `end`; periods ending at or before
    `start` are skipped (numbering still counts from the anchor), as souvenirs'
    customer_*_usage do."""
    step = PERIOD_KINDS[kind]
    for offset, (period_start, period_end) in enumerate(_iter_month_steps(anchor, end, step)):
        if start is None or period_end > start:
            yield offset + 1, period_start, period_end, subscription_label(offset * step, kind)


def check_kind(kind: str) -> str:
    if kind not in PERIOD_KINDS:
        raise ValueErrorWithKnownValues(
            "period kind", kind, PERIOD_KINDS, "Pass kind='month', 'quarter' or 'year'."
        )
    return kind


def check_grain(grain: str) -> str:
    if grain not in GRAINS:
        raise ValueErrorWithKnownValues(
            "grain", grain, GRAINS, "Pass grain='day', 'week' or 'month'."
        )
    return grain
