"""Activity and usage (SPEC 2.4): hourly activity, active users, usage reports per account.

Each scenario loads a small, hand-made set of events, runs a real `dbt build`
of the activity models on the target, and checks the marts against numbers
worked out by hand in the comments, then the query API and the CLI against the
marts. Report time zones with DST are used on purpose: the seed keeps a fixed
offset and gets July wrong in New York.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from trackhouse.errors import ConfigError, ValueErrorWithKnownValues
from trackhouse.ingest import Tracker
from trackhouse.loader import load_files
from trackhouse.output import to_json
from trackhouse.query import activity as api
from trackhouse.query import relation

from factories import group, identify, page, track

MARTS = ["active_users", "usage_calendar_monthly", "usage_subscription_periods", "usage_daily"]
# what the query API reads besides those
MARTS += ["users", "accounts", "account_memberships", "activity_events"]
NO_UNIT_TESTS = ("--exclude-resource-type", "unit_test")


def build(
    warehouse, *select: str, vars: dict[str, Any], full_refresh: bool = False, tests: bool = True
) -> None:
    """dbt build of `select` with their parents; unit tests run once, in the main
    scenario; without `tests`, a dbt run (a reference build, not under test)."""
    args = ["build", "--select", *select, *NO_UNIT_TESTS] if tests else ["run", "--select", *select]
    if full_refresh:
        args.append("--full-refresh")
    warehouse.dbt(*args, vars=vars)


def load(warehouse, events: list[dict[str, Any]], name: str = "events.ndjson") -> None:
    report = load_files([warehouse.write_ndjson(events, name)], settings=warehouse.settings)
    assert report.rejected == 0, report.rejections


def mart(warehouse, name: str, order_by: str) -> list[dict[str, Any]]:
    return warehouse.table(name, order_by)


def utc(text: str) -> datetime:
    """A naive UTC datetime, as the tables store them."""
    return datetime.fromisoformat(text)


def by(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def counts(rows: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in rows]


# -- the rate limit of record_activity keeps hourly activity exact ----------------
def test_record_activity_rate_limit_keeps_hourly_activity_exact(warehouse):
    """Many calls per user; one write per user per UTC clock hour; the hours
    (and the months they fall in) are exactly those of the calls."""
    calls = [
        ("u1", "2024-01-31T23:00:00+00:00"),
        ("u1", "2024-01-31T23:30:00+00:00"),
        ("u1", "2024-01-31T23:59:59.999999+00:00"),
        ("u1", "2024-02-01T00:00:00+00:00"),  # new hour, new month
        ("u1", "2024-02-01T01:00:00+01:00"),  # the same UTC hour written with an offset
        ("u1", "2024-02-01T00:59:59+00:00"),
        ("u1", "2024-01-31T23:45:00+00:00"),  # back in an hour already written
        ("u2", "2024-01-31T23:10:00+00:00"),
        ("u2", "2024-02-01T01:00:00+00:00"),
        ("u2", "2024-02-29T23:59:00-05:00"),  # 2024-03-01 04:59 UTC: March
    ]
    with Tracker(warehouse.settings, flush_interval=0) as tracker:
        written = [tracker.record_activity(u, datetime.fromisoformat(at)) for u, at in calls]
        # The users and their account, through the Python API too.
        tracker.record_user("u1", datetime(2024, 1, 15, tzinfo=UTC), account_id="acme")
        tracker.record_user("u2", datetime(2024, 1, 20, tzinfo=UTC), is_active=False)
        tracker.record_account("acme", datetime(2024, 1, 31, 12, tzinfo=UTC), name="Acme")
    assert written == [True, False, False, True, False, False, False, True, True, True]

    build(
        warehouse,
        "activity_hourly",
        "+usage_calendar_monthly",
        "+usage_subscription_periods",
        "+users",
        "+activity_events",
        vars={"as_of": "2024-03-31"},
    )
    rows = mart(warehouse, "activity_hourly", "user_id, hour_start")
    expected_hours = sorted(
        {
            (
                u,
                datetime.fromisoformat(at)
                .astimezone(UTC)
                .replace(tzinfo=None, minute=0, second=0, microsecond=0),
            )
            for u, at in calls
        }
    )
    assert counts(rows, "user_id", "hour_start") == expected_hours
    assert all(r["event_count"] == 1 for r in rows)

    # Month by month: u1 in January and February, u2 in all three months.
    monthly = mart(warehouse, "usage_calendar_monthly", "period_start")
    assert counts(monthly, "calendar_year_month", "active_users") == [
        ("2024-01", 2),
        ("2024-02", 2),
        ("2024-03", 1),
    ]
    # acme starts at its record_account start (Jan 31) and counts u1 only; the whole
    # site starts at the first join (Jan 15) and counts both (u2 is not activated).
    periods = mart(warehouse, "usage_subscription_periods", "account_id, period_kind, period_index")
    acme = by(periods, account_id="acme", period_kind="month")
    assert counts(acme, "period_start_date", "registered_users", "active_users") == [
        (date(2024, 1, 31), 1, 1),
        (date(2024, 2, 29), 1, 0),
        (date(2024, 3, 31), 1, 0),
    ]
    site = by(periods, account_id=None, period_kind="month")
    assert counts(
        site, "period_start_date", "registered_users", "activated_users", "active_users"
    ) == [
        (date(2024, 1, 15), 2, 1, 2),
        (date(2024, 2, 15), 2, 1, 1),
        (date(2024, 3, 15), 2, 1, 0),
    ]

    s = warehouse.settings
    assert api.count_active_users("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", settings=s) == 2
    # The first write of each hour is what is stored: exact for hour-aligned bounds.
    assert api.count_active_users(end="2024-02-01T00:00:00Z", settings=s) == 2
    assert api.count_active_users("2024-02-01T01:00:00Z", settings=s) == 1


# -- incremental builds equal a full refresh ---------------------------------------
# Every table of the activity models that a run carries over, with the columns that
# must not depend on how it was built (not the bookkeeping: build times, fingerprints).
INCREMENTAL_TABLES = {
    "activity_hourly": "select * from {} order by 1, 2",
    "int_activity_days_localized": "select * from {} order by 1, 2",
    "int_activity_periods_counted": (
        "select grain, period_start_date, active_users from {} order by 1, 2"
    ),
    "int_subscription_periods_counted": (
        "select subscription_key, period_kind, period_index, active_users,"
        " subscription_start_date, members_fingerprint from {} order by 1, 2, 3"
    ),
    "active_users": "select * from {} order by 1, 2",
    "usage_calendar_monthly": "select * from {} order by 1",
    "usage_subscription_periods": "select * from {} order by 1, 2, 3",
    "usage_daily": "select * from {} order by 1",
}


def snapshot(warehouse) -> dict[str, list[dict[str, Any]]]:
    return {
        name: warehouse.query(sql.format(relation(name, warehouse.settings)))
        for name, sql in INCREMENTAL_TABLES.items()
    }


def assert_like_a_full_refresh(warehouse, vars: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The tables as the incremental runs left them equal a full refresh's."""
    incremental = snapshot(warehouse)
    build(warehouse, *(f"+{m}" for m in MARTS), vars=vars, full_refresh=True, tests=False)
    full = snapshot(warehouse)
    for name in INCREMENTAL_TABLES:
        assert incremental[name] == full[name], name
    return full


def test_incremental_builds_equal_a_full_refresh(warehouse):
    """Late and backfilled events, activity after as_of, users moving between
    accounts, a restated subscription start, a new account, then a new report
    time zone and an earlier as_of: after each series of incremental runs every
    carried-over table and every mart equals a full refresh."""
    everyone = [
        identify(
            "2024-03-20T12:00:00Z", "u0", created_at="2024-03-20T12:00:00Z", account_id="acme"
        ),
        identify(
            "2024-03-21T12:00:00Z", "u1", created_at="2024-03-21T12:00:00Z", account_id="acme"
        ),
        identify(
            "2024-03-22T12:00:00Z", "u2", created_at="2024-03-22T12:00:00Z", account_id="beta"
        ),
        group("2024-03-20T13:00:00Z", "u0", "acme", subscription_start="2024-01-31T12:00:00Z"),
        group("2024-03-22T13:00:00Z", "u2", "beta"),
    ]
    hourly_tracks = [
        track(f"2024-04-{day:02d}T{hour:02d}:15:00Z", "view", user_id=f"u{(day + hour) % 4}")
        for day in range(1, 11)
        for hour in (0, 9, 23)
    ]
    load(warehouse, everyone + hourly_tracks, "first.ndjson")
    vars = {"as_of": "2024-04-11", "lookback_days": 3}
    build(warehouse, *(f"+{m}" for m in MARTS), vars=vars, tests=False)
    before = mart(warehouse, "activity_hourly", "user_id, hour_start")

    # Incremental run 1: late events, a backfill, new activity, activity after as_of.
    late_and_new = [
        track("2024-04-09T09:40:00Z", "view", user_id="u2"),  # an hour that has a row: u2 09:15
        track("2024-04-08T12:00:00Z", "view", user_id="u9"),  # late, inside the lookback window
        track("2024-03-01T08:00:00Z", "view", user_id="u8"),  # 40 days late, received now
        track("2024-04-11T10:00:00Z", "view", user_id="u1"),  # new
        track("2024-04-12T02:00:00Z", "view", user_id="u3"),  # after as_of; u3 was active before
        track("2024-04-13T02:00:00Z", "view", user_id="u7"),  # after as_of only
    ]
    load(warehouse, late_and_new, "second.ndjson")
    build(warehouse, *(f"+{m}" for m in MARTS), vars=vars)
    # Incremental run 2: u1 moves to beta, u5 joins acme, beta's start is restated,
    # u3 founds the new account gamma.
    accounts_change = [
        identify("2024-04-10T20:00:00Z", "u1", account_id="beta"),
        identify(
            "2024-04-10T21:00:00Z", "u5", created_at="2024-04-10T21:00:00Z", account_id="acme"
        ),
        group("2024-04-10T22:00:00Z", "u2", "beta", subscription_start="2024-02-15T12:00:00Z"),
        group("2024-04-10T23:00:00Z", "u3", "gamma"),
    ]
    load(warehouse, accounts_change, "third.ndjson")
    build(warehouse, *(f"+{m}" for m in MARTS), vars=vars)
    full = assert_like_a_full_refresh(warehouse, vars)

    hourly = {(r["user_id"], r["hour_start"]): r for r in full["activity_hourly"]}
    assert len(hourly) == len(before) + 9
    updated = hourly[("u2", utc("2024-04-09 09:00:00"))]
    assert (updated["event_count"], updated["last_active_at"]) == (2, utc("2024-04-09 09:40:00"))
    assert ("u8", utc("2024-03-01 08:00:00")) in hourly
    assert ("u9", utc("2024-04-08 12:00:00")) in hourly
    months = by(full["active_users"], grain="month")
    # March: u0, u1, u2 (their identify calls) and u8's backfilled event.
    assert counts(months, "period_start_date", "active_users") == [
        (date(2024, 3, 1), 4),
        (date(2024, 4, 1), 6),  # u0-u3, u5 (identify) and u9; not u7, active after as_of only
    ]
    periods = full["usage_subscription_periods"]
    beta = by(periods, account_id="beta", period_kind="month")
    assert beta[0]["period_start_date"] == date(2024, 2, 15)  # the restated start
    assert [r["active_users"] for r in beta] == [0, 2]  # u1 and u2, from March 15
    acme = by(periods, account_id="acme", period_kind="year")
    # registered at the end: u0 and u5; active: they and u1 before the move to beta
    assert counts(acme, "registered_users", "active_users") == [(2, 3)]
    assert by(periods, account_id="gamma", period_kind="year")[0]["active_users"] == 1

    # Incremental run 3: another report time zone (the local dates change: every
    # incremental table rebuilds itself) and an earlier as_of, with a new event at
    # Kolkata's midnight (18:30 UTC) inside a UTC hour.
    load(warehouse, [track("2024-04-10T18:40:00Z", "view", user_id="u6")], "fourth.ndjson")
    vars = {"as_of": "2024-04-09", "lookback_days": 3, "report_timezone": "Asia/Kolkata"}
    build(warehouse, *(f"+{m}" for m in MARTS), vars=vars)
    full = assert_like_a_full_refresh(warehouse, vars)
    assert ("u6", date(2024, 4, 11)) in {
        (r["user_id"], r["activity_date"]) for r in full["int_activity_days_localized"]
    }
    # April up to as_of: u7 and u6, active only after it, are left out of the cut month.
    april = by(full["active_users"], grain="month", period_start_date=date(2024, 4, 1))[0]
    assert april["period_end_date"] == date(2024, 4, 10)
    assert april["active_users"] == 5  # u0-u3 and u9


# -- the main scenario: New York, accounts, inactive users, boundaries ---------------
TZ_NY = "America/New_York"
AS_OF = "2024-08-10"
NY_VARS = {"report_timezone": TZ_NY, "as_of": AS_OF}

SCENARIO = [
    # alice joins Jan 31 (10:00 local); her account acme has no stated start:
    # it starts at its first group call, Jan 31 15:00 local.
    identify("2024-01-31T15:00:00Z", "alice", created_at="2024-01-31T15:00:00Z", account_id="acme"),
    group("2024-01-31T20:00:00Z", "alice", "acme", name="Acme"),
    # bob joins Feb 29 (leap day), is deactivated; account beta starts Feb 29 00:00 local.
    identify("2024-02-29T12:00:00Z", "bob", created_at="2024-02-29T12:00:00Z", is_active=False),
    group("2024-03-01T10:00:00Z", "bob", "beta", subscription_start="2024-02-29T05:00:00Z"),
    # dave: active Dec 31 2023 local (Jan 1 04:30 UTC, EST), joins Jun 30, member of acme.
    track("2024-01-01T04:30:00Z", "view", user_id="dave"),
    identify("2024-06-30T12:00:00Z", "dave", created_at="2024-06-30T12:00:00Z", account_id="acme"),
    track("2024-03-10T12:00:00Z", "view", user_id="alice"),
    # Around July 1 local midnight (04:00 UTC in summer, EDT):
    track("2024-07-01T03:59:59Z", "view", user_id="alice"),  # June 30, 23:59:59
    track("2024-07-01T04:00:00Z", "view", user_id="alice"),  # July 1, 00:00:00
    page(
        "2024-07-01T03:30:00Z", "https://app.example/", user_id="carol"
    ),  # June; carol's first sighting
    track("2024-07-01T04:30:00Z", "view", user_id="bob"),  # July 1, 00:30 (the seed says June)
    # Around the report end (as_of Aug 10 -> ends Aug 11 04:00 UTC):
    track("2024-08-11T03:59:00Z", "view", user_id="carol"),  # Aug 10, 23:59: in
    track("2024-08-11T05:00:00Z", "view", user_id="alice"),  # Aug 11: after as_of, out
]


def test_usage_marts_api_and_cli_new_york(warehouse):
    load(warehouse, SCENARIO)
    # The build with the data tests (the unit tests run in tests/test_parity.py).
    warehouse.dbt("build", "--select", *(f"+{m}" for m in MARTS), vars=NY_VARS)
    s = warehouse.settings

    # Users: joined_at stated or first seen; current is_active; account by traits or group.
    users = {r["user_id"]: r for r in warehouse.query(f"select * from {relation('users', s)}")}
    assert users["carol"]["joined_at"] == utc("2024-07-01 03:30:00")
    assert not users["carol"]["is_joined_at_stated"]
    assert (users["bob"]["is_active"], users["bob"]["account_id"]) == (False, "beta")
    assert users["dave"]["account_id"] == "acme" and users["carol"]["account_id"] is None

    # Calendar months in New York. registered = joined before the month's end,
    # activated = of those, is_active now (bob is not), active = distinct users.
    monthly = mart(warehouse, "usage_calendar_monthly", "period_start")
    assert counts(
        monthly, "calendar_year_month", "registered_users", "activated_users", "active_users"
    ) == [
        ("2023-12", 0, 0, 1),  # dave, before anyone joined
        ("2024-01", 1, 1, 1),  # alice
        ("2024-02", 2, 1, 1),  # bob's identify on Feb 29
        ("2024-03", 2, 1, 2),  # bob's group call, alice Mar 10
        ("2024-04", 2, 1, 0),
        ("2024-05", 2, 1, 0),
        ("2024-06", 4, 3, 3),  # carol and dave joined Jun 30 local; alice, carol, dave active
        ("2024-07", 4, 3, 2),  # alice at 00:00:00 and bob at 00:30 local
        ("2024-08", 4, 3, 1),  # carol at 23:59 on as_of; alice after as_of is left out
    ]
    july = by(monthly, calendar_year_month="2024-07")[0]
    assert (july["period_start"], july["period_end"]) == (
        utc("2024-07-01 04:00:00"),
        utc("2024-08-01 04:00:00"),
    )
    assert by(monthly, calendar_year_month="2024-01")[0]["period_start"] == utc(
        "2024-01-01 05:00:00"
    )
    assert monthly[-1]["period_end"] == utc("2024-08-11 04:00:00")  # cut at the day after as_of
    assert monthly[-1]["calendar_year"] == 2024

    # Subscription periods: the whole site (all users) from the first join, Jan 31;
    # acme from its first group call, Jan 31 (Feb 29 -> Mar 31 -> Apr 30 ...);
    # beta from its stated start, Feb 29 (Mar 29 -> Apr 29 ...).
    periods = mart(warehouse, "usage_subscription_periods", "account_id, period_kind, period_index")
    site_months = by(periods, account_id=None, period_kind="month")
    assert [(r["period_start_date"], r["label"]) for r in site_months] == [
        (date(2024, 1, 31), "Y01 M01"),
        (date(2024, 2, 29), "Y01 M02"),
        (date(2024, 3, 31), "Y01 M03"),
        (date(2024, 4, 30), "Y01 M04"),
        (date(2024, 5, 31), "Y01 M05"),
        (date(2024, 6, 30), "Y01 M06"),
        (date(2024, 7, 31), "Y01 M07"),
    ]
    assert site_months[-1]["period_end_date"] == date(2024, 8, 11)
    assert counts(site_months, "registered_users", "activated_users", "active_users") == [
        (1, 1, 1),
        (2, 1, 2),
        (2, 1, 0),
        (2, 1, 0),
        (2, 1, 0),  # carol joined Jun 30 23:30 local: not before this period's end
        (4, 3, 4),
        (4, 3, 1),
    ]
    assert counts(by(periods, account_id=None, period_kind="quarter"), "label", "active_users") == [
        ("Y01 Q1", 2),
        ("Y01 Q2", 4),
        ("Y01 Q3", 1),
    ]
    assert counts(by(periods, account_id=None, period_kind="year"), "label", "active_users") == [
        ("Y01", 4)
    ]
    acme = by(periods, account_id="acme", period_kind="month")
    assert counts(acme, "registered_users", "active_users") == [
        (1, 1),  # alice; dave's December activity is before acme's start
        (1, 1),
        (1, 0),
        (1, 0),
        (1, 0),
        (2, 2),
        (2, 0),
    ]
    beta = by(periods, account_id="beta", period_kind="month")
    assert [r["period_start_date"] for r in beta] == [
        date(2024, 2, 29),
        date(2024, 3, 29),
        date(2024, 4, 29),
        date(2024, 5, 29),
        date(2024, 6, 29),
        date(2024, 7, 29),
    ]
    assert counts(beta, "registered_users", "activated_users", "active_users") == [
        (1, 0, 1),
        (1, 0, 0),
        (1, 0, 0),
        (1, 0, 0),
        (1, 0, 1),
        (1, 0, 0),
    ]
    assert beta[0]["period_start"] == utc("2024-02-29 05:00:00")  # EST
    assert beta[-2]["period_start"] == utc("2024-06-29 04:00:00")  # EDT

    # The query API computes the same numbers from activity_hourly and the users.
    kw = {"timezone": TZ_NY, "as_of": AS_OF, "settings": s}
    assert api.calendar_monthly_usage(**kw) == monthly
    # The site and beta start at a local midnight: the API gives the mart's rows.
    for account in (None, "beta"):
        for kind in ("month", "quarter", "year"):
            assert api.subscription_usage(kind=kind, account_id=account, **kw) == by(
                periods, account_id=account, period_kind=kind
            ), (account, kind)
    # acme starts at its first group call, Jan 31 15:00 local: the mart anchors
    # at that date, the API at that instant (souvenirs keeps the time of day), so
    # dave's Jun 30 08:00 identify is in the period before Jun 30 15:00.
    acme_exact = api.subscription_usage(account_id="acme", **kw)
    assert acme_exact[0]["period_start"] == utc("2024-01-31 20:00:00")  # 15:00 EST
    assert acme_exact[5]["period_start"] == utc("2024-06-30 19:00:00")  # 15:00 EDT
    assert acme_exact[-1]["period_end"] == utc("2024-08-11 04:00:00")
    assert counts(acme_exact, "registered_users", "active_users") == [
        (1, 1),  # alice's group call at 15:00 local is the first instant
        (1, 1),
        (1, 0),
        (1, 0),
        (2, 1),  # dave, Jun 30 08:00 local
        (2, 1),  # alice, Jun 30 23:59:59 and Jul 1 00:00 local
        (2, 0),
    ]
    daily = mart(warehouse, "usage_daily", "usage_date")
    assert api.daily_usage(**kw) == daily
    active = mart(warehouse, "active_users", "grain, period_start")
    for grain in ("day", "week", "month"):
        assert api.active_users_by_period(grain, **kw) == by(active, grain=grain), grain

    # Daily rows: 23:59:59 on Jun 30 local is June 30; registrations accumulate.
    june_30 = by(daily, usage_date=date(2024, 6, 30))[0]
    assert (june_30["active_users"], june_30["registered_users"], june_30["month_label"]) == (
        3,
        4,
        "Y01 M06",
    )

    # count_active_users: [start, end), an event exactly at end is out.
    assert api.count_active_users(settings=s) == 4
    assert api.count_active_users("2024-07-01T04:30:00Z", "2024-07-01T05:00:00Z", settings=s) == 1
    assert api.count_active_users("2024-07-01T04:00:00Z", "2024-07-01T04:30:00Z", settings=s) == 1
    assert api.count_active_users(end="2024-01-01T04:30:00Z", settings=s) == 0
    assert api.count_active_users(start="2024-08-11T05:00:00Z", settings=s) == 1
    # Naive bounds are report-time-zone wall clock; dates are local midnights.
    assert api.count_active_users("2024-07-01", "2024-08-01", timezone=TZ_NY, settings=s) == 2
    assert api.count_active_users(datetime(2024, 7, 1), timezone=TZ_NY, settings=s) == 3
    assert (
        api.count_active_users(
            "2024-07-01", "2024-08-01", account_id="acme", timezone=TZ_NY, settings=s
        )
        == 1
    )
    # Other anchors than the marts' are computed for the call.
    feb_anchor = api.subscription_usage(
        "2024-02-29", start="2024-05-01", end="2024-07-02", kind="month", **kw
    )
    assert [
        (r["label"], r["period_start_date"], r["period_end_date"], r["active_users"])
        for r in feb_anchor
    ] == [
        ("Y01 M03", date(2024, 4, 29), date(2024, 5, 29), 0),
        ("Y01 M04", date(2024, 5, 29), date(2024, 6, 29), 0),
        ("Y01 M05", date(2024, 6, 29), date(2024, 7, 2), 4),
    ]

    # The CLI prints the API's rows (JSON keyed by the marts' column names).
    def cli_json(*args: str) -> Any:
        return orjson.loads(warehouse.cli("query", *args, "--format", "json").stdout)

    common = ("--timezone", TZ_NY, "--as-of", AS_OF)
    assert cli_json("usage", "--calendar", *common) == orjson.loads(to_json(monthly))
    assert cli_json("usage", "--account", "beta", *common) == orjson.loads(to_json(beta))
    assert cli_json(
        "usage", "--subscription-start", "2024-01-31", "--kind", "quarter", *common
    ) == orjson.loads(to_json(by(periods, account_id=None, period_kind="quarter")))
    acme_daily = api.daily_usage(account_id="acme", **kw)
    assert cli_json("usage", "--daily", "--account", "acme", *common) == orjson.loads(
        to_json(acme_daily)
    )
    # acme's days start at its subscription start, 15:00 local, and count its
    # members only: [Jun 29 15:00, Jun 30 15:00) has dave (08:00), the next alice.
    assert acme_daily[0]["usage_date"] == date(2024, 1, 31)
    assert acme_daily[0]["period_start"] == utc("2024-01-31 20:00:00")
    assert by(acme_daily, usage_date=date(2024, 6, 29))[0]["active_users"] == 1
    assert by(acme_daily, usage_date=date(2024, 6, 30))[0]["active_users"] == 1
    assert cli_json("active-users", "--grain", "month", *common) == orjson.loads(
        to_json(by(active, grain="month"))
    )
    (window,) = cli_json(
        "active-users", "--start", "2024-07-01T04:00:00Z", "--end", "2024-07-01T04:30:00Z"
    )
    assert window == {
        "period_start": "2024-07-01T04:00:00+00:00",
        "period_end": "2024-07-01T04:30:00+00:00",
        "active_users": 1,
    }
    table = warehouse.cli("query", "usage", "--calendar", *common).stdout
    assert "calendar_year_month" in table and "2024-07" in table
    failed = warehouse.cli("query", "usage", "--start", "2024-01-01", check=False)
    assert failed.returncode == 2 and "--subscription-start" in failed.stderr


# -- DST in Europe/Amsterdam --------------------------------------------------------
def test_amsterdam_months_and_days_across_dst(warehouse):
    """CET (UTC+1) in winter, CEST (UTC+2) from 2024-03-31 02:00 to 2024-10-27 03:00."""
    events = [
        track("2024-03-30T23:00:00Z", "view", user_id="u0"),  # Mar 31 00:00 CET
        track("2024-03-31T21:59:59Z", "view", user_id="u1"),  # Mar 31 23:59:59 CEST
        track("2024-03-31T22:00:00Z", "view", user_id="u2"),  # Apr 1 00:00 CEST
        track("2024-10-31T22:59:00Z", "view", user_id="u3"),  # Oct 31 23:59 CET
        track("2024-10-31T23:00:00Z", "view", user_id="u4"),  # Nov 1 00:00 CET
    ]
    load(warehouse, events)
    vars = {"report_timezone": "Europe/Amsterdam", "as_of": "2024-11-05"}
    build(warehouse, *(f"+{m}" for m in MARTS), vars=vars)
    s = warehouse.settings

    monthly = mart(warehouse, "usage_calendar_monthly", "period_start")
    assert counts(monthly, "calendar_year_month", "active_users") == [
        ("2024-03", 2),
        ("2024-04", 1),
        ("2024-05", 0),
        ("2024-06", 0),
        ("2024-07", 0),
        ("2024-08", 0),
        ("2024-09", 0),
        ("2024-10", 1),
        ("2024-11", 1),
    ]
    starts = {r["calendar_year_month"]: r["period_start"] for r in monthly}
    assert starts["2024-03"] == utc("2024-02-29 23:00:00")
    assert starts["2024-04"] == utc("2024-03-31 22:00:00")
    assert starts["2024-11"] == utc("2024-10-31 23:00:00")

    days = mart(warehouse, "active_users", "grain, period_start")
    (march_31,) = by(days, grain="day", period_start_date=date(2024, 3, 31))
    assert march_31["active_users"] == 2
    assert march_31["period_end"] - march_31["period_start"] == timedelta(hours=23)
    (october_27,) = by(days, grain="day", period_start_date=date(2024, 10, 27))
    assert october_27["period_end"] - october_27["period_start"] == timedelta(hours=25)

    kw = {"timezone": "Europe/Amsterdam", "as_of": "2024-11-05", "settings": s}
    assert api.calendar_monthly_usage(**kw) == monthly
    assert api.active_users_by_period("day", **kw) == by(days, grain="day")
    assert api.daily_usage(**kw) == mart(warehouse, "usage_daily", "usage_date")
    # April in Amsterdam, as a naive local wall-clock window and as aware instants.
    assert (
        api.count_active_users("2024-04-01", "2024-05-01", timezone="Europe/Amsterdam", settings=s)
        == 1
    )
    cest = timezone(timedelta(hours=2))
    assert (
        api.count_active_users(
            datetime(2024, 4, 1, tzinfo=cest), datetime(2024, 5, 1, tzinfo=cest), settings=s
        )
        == 1
    )


# -- the period arithmetic the API mirrors (no database) ----------------------------
def test_clamped_months_count_from_the_anchor_not_the_previous_boundary():
    jan_31 = date(2023, 1, 31)
    assert [api.add_months_clamped(jan_31, n) for n in range(5)] == [
        date(2023, 1, 31),
        date(2023, 2, 28),
        date(2023, 3, 31),
        date(2023, 4, 30),
        date(2023, 5, 31),
    ]
    assert api.months_between_clamped(jan_31, date(2023, 3, 30)) == 1
    assert api.months_between_clamped(jan_31, date(2023, 3, 31)) == 2
    assert api.months_between_clamped(jan_31, date(2023, 1, 30)) == -1

    # Subscription periods run between instants (here midnights in UTC).
    def at(*args: int) -> datetime:
        return datetime(*args, tzinfo=UTC)

    leap = list(api.subscription_periods(at(2024, 2, 29), "year", end=at(2028, 3, 2)))
    assert [(i, s, e, label) for i, s, e, label in leap] == [
        (1, at(2024, 2, 29), at(2025, 2, 28), "Y01"),
        (2, at(2025, 2, 28), at(2026, 2, 28), "Y02"),
        (3, at(2026, 2, 28), at(2027, 2, 28), "Y03"),
        (4, at(2027, 2, 28), at(2028, 2, 29), "Y04"),
        (5, at(2028, 2, 29), at(2028, 3, 2), "Y05"),
    ]
    quarters = list(api.subscription_periods(at(2024, 1, 31), "quarter", at(2025, 6, 1)))
    assert [label for *_, label in quarters] == [
        "Y01 Q1",
        "Y01 Q2",
        "Y01 Q3",
        "Y01 Q4",
        "Y02 Q1",
        "Y02 Q2",
    ]
    assert api.subscription_label(12 * 120 + 1, "month") == "Y121 M02"


def test_query_arguments_are_checked_with_actionable_errors():
    with pytest.raises(ValueErrorWithKnownValues, match="month, quarter, year"):
        api.subscription_usage("2024-01-31", kind="weekly")
    with pytest.raises(ValueErrorWithKnownValues, match="day, month, week"):
        api.active_users_by_period("hour")
    with pytest.raises(api.QueryArgumentError, match="ISO 8601"):
        api.count_active_users(start="yesterday")
    with pytest.raises(ConfigError, match="IANA"):
        api.count_active_users(timezone="Mars/Olympus")
