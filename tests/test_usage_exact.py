"""Usage at exact instants, as django-souvenirs computes it.

The period-iteration cases are souvenirs' own `tests/test_utils.py`; the report
scenarios are its `tests/test_reports.py` (one user joining and active on Feb 14
12:00 of each year 2010-2017 plus one on 2015-10-17 12:00; subscription start
2010-01-24 22:00; "now" 2017-04-03 23:00), run against the query API on a real
build, in America/New_York so that the anchor's 22:00 must survive DST.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from trackhouse.loader import load_files
from trackhouse.query import activity as api
from trackhouse.query.periods import iter_days, iter_months, iter_quarters, iter_years

from factories import identify, track

NY = ZoneInfo("America/New_York")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def expected(start: datetime, end: datetime, days: list[tuple[int, int, int]]):
    starts = [datetime.combine(date(*d), start.timetz()) for d in days]
    return list(zip(starts, [*starts[1:], end], strict=True))


# -- souvenirs tests/test_utils.py -------------------------------------------------
def test_iter_days():
    start, end = local(2017, 3, 29, 1, 2, 3), local(2017, 4, 7, 11, 22, 33)
    days = [(2017, 3, d) for d in (29, 30, 31)] + [(2017, 4, d) for d in range(1, 8)]
    assert list(iter_days(start, end)) == expected(start, end, days)


def test_iter_days_keeps_the_local_time_across_dst():
    """Mar 10 2024 has 23 hours in New York: the day still starts at 01:02:03."""
    start, end = local(2024, 3, 9, 1, 2, 3), local(2024, 3, 12)
    got = list(iter_days(start, end))
    assert [s.hour for s, _ in got] == [1, 1, 1]
    assert got[1][1].astimezone(UTC) - got[1][0].astimezone(UTC) == timedelta(hours=23)


def test_iter_months():
    start, end = local(2015, 12, 31, 1, 2, 3), local(2018, 6, 10, 11, 22, 33)
    days = [(2015, 12, 31)]
    for year in (2016, 2017, 2018):
        for month in range(1, 13):
            if (year, month) > (2018, 5):
                break
            last = {2: 29 if year == 2016 else 28, 4: 30, 6: 30, 9: 30, 11: 30}.get(month, 31)
            days.append((year, month, last))
    assert days[2] == (2016, 2, 29)  # leap!
    assert list(iter_months(start, end)) == expected(start, end, days)


def test_iter_quarters():
    start, end = local(2015, 11, 30, 1, 2, 3), local(2017, 2, 28, 11, 22, 33)
    days = [(2015, 11, 30), (2016, 2, 29), (2016, 5, 30), (2016, 8, 30), (2016, 11, 30)]
    days.append((2017, 2, 28))
    assert list(iter_quarters(start, end)) == expected(start, end, days)


def test_iter_years():
    start, end = local(2016, 2, 29, 1, 2, 3), local(2019, 2, 28, 11, 22, 33)
    days = [(2016, 2, 29), (2017, 2, 28), (2018, 2, 28), (2019, 2, 28)]
    assert list(iter_years(start, end)) == expected(start, end, days)


# -- souvenirs tests/test_reports.py against the query API --------------------------
SUBSCRIPTION_START = local(2010, 1, 24, 22)
NOW = local(2017, 4, 3, 23)
SOUVENIRS = [local(year, 2, 14, 12) for year in range(2010, 2018)] + [local(2015, 10, 17, 12)]


def when(year: int, month: int, **kw: int) -> datetime:
    return SUBSCRIPTION_START.replace(year=year, month=month, **kw)


def utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def build_souvenirs(warehouse) -> dict[str, Any]:
    events = []
    for n, at in enumerate(SOUVENIRS):
        iso = at.astimezone(UTC).isoformat()
        events.append(identify(iso, f"user{n}", created_at=iso))
    path = warehouse.write_ndjson(events)
    report = load_files([path], settings=warehouse.settings)
    assert report.rejected == 0, report.rejections
    warehouse.dbt(
        "run",
        "--select",
        "+users",
        "+accounts",
        "+activity_hourly",
        "+activity_events",
        "trackhouse_settings",
        vars={"report_timezone": "America/New_York", "as_of": "2017-04-03"},
    )
    return {"settings": warehouse.settings, "timezone": "America/New_York", "as_of": "2017-04-03"}


def usage(row: dict[str, Any]) -> tuple[int, int, int]:
    return (row["registered_users"], row["activated_users"], row["active_users"])


def non_zero(rows: list[dict[str, Any]], *label_keys: str) -> list[tuple[Any, ...]]:
    return [
        (*(r[k] for k in label_keys), usage(r), r["period_start"], r["period_end"])
        for r in rows
        if r["active_users"]
    ]


def test_souvenirs_report_scenarios(warehouse):
    """One build, then souvenirs' report tests (customer monthly, quarterly and
    yearly usage; daily usage; calendar monthly usage) against the query API."""
    kw = build_souvenirs(warehouse)
    check_customer_usage(kw)
    check_daily_and_calendar_monthly_usage(kw)


def check_customer_usage(kw: dict[str, Any]) -> None:
    months = api.subscription_usage(SUBSCRIPTION_START, end=NOW, kind="month", **kw)
    assert len(months) == 87  # 7 years, 3 months
    rows = [(2010, 1, "Y01 M01", 1), (2011, 1, "Y02 M01", 2), (2012, 1, "Y03 M01", 3)]
    rows += [(2013, 1, "Y04 M01", 4), (2014, 1, "Y05 M01", 5), (2015, 1, "Y06 M01", 6)]
    rows += [(2015, 9, "Y06 M09", 7), (2016, 1, "Y07 M01", 8), (2017, 1, "Y08 M01", 9)]
    assert non_zero(months, "label") == [
        (label, (n, n, 1), utc(when(y, m)), utc(when(y, m + 1))) for y, m, label, n in rows
    ]
    # The anchor's 22:00 local is kept in winter (03:00 UTC) and summer (02:00 UTC).
    assert months[0]["period_start"] == datetime(2010, 1, 25, 3)
    assert months[5]["period_start"] == datetime(2010, 6, 25, 2)

    at = when(2013, 2)
    assert len(api.subscription_usage(SUBSCRIPTION_START, start=at, end=NOW, **kw)) == 50
    assert len(api.subscription_usage(SUBSCRIPTION_START, end=at, **kw)) == 37
    assert api.subscription_usage(SUBSCRIPTION_START, start=at, end=at, **kw) == []

    quarters = api.subscription_usage(SUBSCRIPTION_START, end=NOW, kind="quarter", **kw)
    assert len(quarters) == 29
    rows = [(2010, 1, "Y01 Q1", 1), (2011, 1, "Y02 Q1", 2), (2012, 1, "Y03 Q1", 3)]
    rows += [(2013, 1, "Y04 Q1", 4), (2014, 1, "Y05 Q1", 5), (2015, 1, "Y06 Q1", 6)]
    rows += [(2015, 7, "Y06 Q3", 7), (2016, 1, "Y07 Q1", 8)]
    assert non_zero(quarters, "label") == [
        (label, (n, n, 1), utc(when(y, m)), utc(when(y, m + 3))) for y, m, label, n in rows
    ] + [("Y08 Q1", (9, 9, 1), utc(when(2017, 1)), utc(NOW))]
    assert len(api.subscription_usage(SUBSCRIPTION_START, at, NOW, "quarter", **kw)) == 17
    assert len(api.subscription_usage(SUBSCRIPTION_START, end=at, kind="quarter", **kw)) == 13

    years = api.subscription_usage(SUBSCRIPTION_START, end=NOW, kind="year", **kw)
    assert len(years) == 8
    assert [(r["label"], usage(r)) for r in years] == [
        ("Y01", (1, 1, 1)),
        ("Y02", (2, 2, 1)),
        ("Y03", (3, 3, 1)),
        ("Y04", (4, 4, 1)),
        ("Y05", (5, 5, 1)),
        ("Y06", (7, 7, 2)),
        ("Y07", (8, 8, 1)),
        ("Y08", (9, 9, 1)),
    ]
    assert years[-1]["period_end"] == utc(NOW)
    assert len(api.subscription_usage(SUBSCRIPTION_START, at, NOW, "year", **kw)) == 5
    assert len(api.subscription_usage(SUBSCRIPTION_START, end=at, kind="year", **kw)) == 4
    assert api.subscription_usage(SUBSCRIPTION_START, at, at, "year", **kw) == []


def check_daily_and_calendar_monthly_usage(kw: dict[str, Any]) -> None:
    days = api.daily_usage(subscription_start=SUBSCRIPTION_START, end=NOW, **kw)
    assert len(days) == 2627  # 7 years, 70 days, 2 leap days
    rows = [(2010, "Y01 M01", "Y01 Q1", "Y01", 1), (2011, "Y02 M01", "Y02 Q1", "Y02", 2)]
    rows += [(2012, "Y03 M01", "Y03 Q1", "Y03", 3), (2013, "Y04 M01", "Y04 Q1", "Y04", 4)]
    rows += [(2014, "Y05 M01", "Y05 Q1", "Y05", 5), (2015, "Y06 M01", "Y06 Q1", "Y06", 6)]
    expected_days = [
        (ml, ql, yl, (n, n, 1), utc(when(y, 2, day=13)), utc(when(y, 2, day=14)))
        for y, ml, ql, yl, n in rows
    ]
    expected_days.append(
        (
            "Y06 M09",
            "Y06 Q3",
            "Y06",
            (7, 7, 1),
            utc(when(2015, 10, day=16)),
            utc(when(2015, 10, day=17)),
        )
    )
    expected_days += [
        (ml, ql, yl, (n, n, 1), utc(when(y, 2, day=13)), utc(when(y, 2, day=14)))
        for y, ml, ql, yl, n in [
            (2016, "Y07 M01", "Y07 Q1", "Y07", 8),
            (2017, "Y08 M01", "Y08 Q1", "Y08", 9),
        ]
    ]
    assert non_zero(days, "month_label", "quarter_label", "year_label") == expected_days
    at = when(2013, 2)
    assert len(api.daily_usage(at, NOW, subscription_start=SUBSCRIPTION_START, **kw)) == 1500
    assert len(api.daily_usage(end=at, subscription_start=SUBSCRIPTION_START, **kw)) == 1127
    assert api.daily_usage(at, at, subscription_start=SUBSCRIPTION_START, **kw) == []

    months = api.calendar_monthly_usage(SUBSCRIPTION_START, NOW, **kw)
    assert len(months) == 88  # 7 years, 4 months
    first_of = lambda y, m: utc(local(y, m, 1))  # noqa: E731
    calendar = [(y, 2, n) for y, n in zip(range(2010, 2016), range(1, 7), strict=True)]
    calendar += [(2015, 10, 7), (2016, 2, 8), (2017, 2, 9)]
    assert non_zero(months, "calendar_year_month") == [
        (f"{y}-{m:02d}", (n, n, 1), first_of(y, m), first_of(y, m + 1)) for y, m, n in calendar
    ]
    assert len(api.calendar_monthly_usage(local(2013, 2, 1), local(2013, 5, 1), **kw)) == 3
    assert api.calendar_monthly_usage(local(2013, 2, 1), local(2013, 2, 1), **kw) == []


# -- count_active_users inside an hour ---------------------------------------------
def test_count_active_users_is_exact_inside_an_hour(warehouse):
    """u1 is active at 10:10, 10:30 and 10:50; u2 at 10:10 and 10:50 only. A
    window inside the hour that holds neither first nor last event is decided
    by the events themselves: [10:20, 10:40) has u1 only."""
    events = [
        track("2024-05-01T10:10:00Z", "view", user_id="u1"),
        track("2024-05-01T10:30:00Z", "view", user_id="u1"),
        track("2024-05-01T10:50:00Z", "view", user_id="u1"),
        track("2024-05-01T10:10:00Z", "view", user_id="u2"),
        track("2024-05-01T10:50:00Z", "view", user_id="u2"),
    ]
    load_files([warehouse.write_ndjson(events)], settings=warehouse.settings)
    warehouse.dbt("run", "--select", "+users", "+activity_events", "trackhouse_settings")
    s = warehouse.settings
    assert api.count_active_users("2024-05-01T10:20:00Z", "2024-05-01T10:40:00Z", settings=s) == 1
    assert api.count_active_users("2024-05-01T10:31:00Z", "2024-05-01T10:49:59Z", settings=s) == 0
    assert api.count_active_users("2024-05-01T10:10:00Z", "2024-05-01T10:10:01Z", settings=s) == 2
    assert api.count_active_users("2024-05-01T10:50:00Z", "2024-05-01T11:00:00Z", settings=s) == 2
    assert api.count_active_users("2024-05-01T10:10:01Z", "2024-05-01T10:50:00Z", settings=s) == 1
