"""Engagement end to end: retention cohorts, stickiness, lifecycle (SPEC 2.4).

One story in Europe/Amsterdam around the DST change of 2024-03-31 and the month
ends of February (leap day) and March: sign-ups and activity whose local dates
differ from their UTC dates, checked against numbers worked out by hand.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from trackhouse.loader import load_files
from trackhouse.query.engagement import (
    EngagementArgumentError,
    active_days_distribution,
    lifecycle,
    retention,
    stickiness,
)

from factories import identify, track

VARS = {"report_timezone": "Europe/Amsterdam", "as_of": "2024-04-09"}
MARTS = ("+retention_cohorts", "+lifecycle", "+stickiness_daily", "+stickiness_monthly")


def signup(at: str, user: str, account: str | None = None) -> dict:
    traits = {"created_at": at} | ({"account_id": account} if account else {})
    return identify(at, user, anonymous_id=f"anon-{user}", **traits)


EVENTS = [
    # a: 22:30 UTC on March 31 is 00:30 on April 1 in Amsterdam (CEST since 02:00).
    signup("2024-03-31T22:30:00Z", "a", "acme"),
    track("2024-04-01T08:00:00Z", "opened", user_id="a"),
    track("2024-04-08T08:00:00Z", "opened", user_id="a"),
    # b: 21:30 UTC is still March 31 locally (week of Monday March 25).
    signup("2024-03-31T21:30:00Z", "b"),
    track("2024-03-31T21:45:00Z", "opened", user_id="b"),
    # c: 23:30 UTC on the leap day is March 1 locally (CET); back on April 1 local.
    signup("2024-02-29T23:30:00Z", "c", "acme"),
    track("2024-03-31T22:15:00Z", "opened", user_id="c"),
    # after as_of: not counted
    track("2024-04-10T08:00:00Z", "opened", user_id="b"),
]


def test_engagement_story(warehouse):
    load_files([warehouse.write_ndjson(EVENTS)], settings=warehouse.settings)
    warehouse.build(*MARTS, vars=VARS)
    s = warehouse.settings

    months = {
        (r["cohort_start_date"], r["period_index"]): (
            r["cohort_users"],
            r["active_users"],
            r["retention"],
        )
        for r in retention("month", settings=s)
    }
    assert months == {
        # March: b and c; both active in March, only c in April (cut at April 10).
        (date(2024, 3, 1), 0): (2, 2, Decimal(1)),
        (date(2024, 3, 1), 1): (2, 1, Decimal("0.5")),
        (date(2024, 4, 1), 0): (1, 1, Decimal(1)),
    }
    weeks = {
        (r["cohort_start_date"], r["period_index"]): r["active_users"]
        for r in retention("week", settings=s)
    }
    assert weeks == {
        **{(date(2024, 2, 26), i): 0 for i in range(7)},
        (date(2024, 2, 26), 0): 1,  # c, March 1 local
        (date(2024, 2, 26), 5): 1,  # c, April 1 local
        (date(2024, 3, 25), 0): 1,
        (date(2024, 3, 25), 1): 0,
        (date(2024, 3, 25), 2): 0,
        (date(2024, 4, 1), 0): 1,
        (date(2024, 4, 1), 1): 1,  # a on April 8
    }
    last_week = [r for r in retention("week", start="2024-04-01", settings=s)]
    assert [(r["period_end_date"], r["is_complete"]) for r in last_week] == [
        (date(2024, 4, 8), True),
        (date(2024, 4, 10), False),
    ]

    days = {r["date_day"]: r for r in stickiness(start="2024-03-31", settings=s)}
    assert (days[date(2024, 3, 31)]["dau"], days[date(2024, 4, 1)]["dau"]) == (1, 2)
    assert (days[date(2024, 4, 8)]["dau"], days[date(2024, 4, 8)]["wau"]) == (1, 1)
    assert days[date(2024, 4, 8)]["mau"] == 3
    assert days[date(2024, 4, 8)]["dau_mau_ratio"] == Decimal("0.333333")
    assert max(days) == date(2024, 4, 9)

    april = [r for r in active_days_distribution(start="2024-04-01", settings=s)]
    # a: April 1 and 8; c: April 1.
    assert [(r["active_days"], r["users"], r["user_share"]) for r in april] == [
        (1, 1, Decimal("0.5")),
        (2, 1, Decimal("0.5")),
    ]

    site = {
        (r["period_start_date"], r["status"]): r["users"] for r in lifecycle("month", settings=s)
    }
    assert site == {
        (date(2024, 3, 1), "new"): 2,
        (date(2024, 3, 1), "returning"): 0,
        (date(2024, 3, 1), "resurrecting"): 0,
        (date(2024, 3, 1), "dormant"): 0,
        (date(2024, 4, 1), "new"): 1,
        (date(2024, 4, 1), "returning"): 1,
        (date(2024, 4, 1), "resurrecting"): 0,
        (date(2024, 4, 1), "dormant"): 1,
    }
    acme = {
        (r["period_start_date"], r["status"]): r["users"]
        for r in lifecycle("month", account_id="acme", settings=s)
        if r["users"]
    }
    assert acme == {
        (date(2024, 3, 1), "new"): 1,
        (date(2024, 4, 1), "new"): 1,
        (date(2024, 4, 1), "returning"): 1,
    }


def test_engagement_arguments_are_checked():
    with pytest.raises(ValueError, match="'day' is not one of: month, week"):
        retention("day")
    with pytest.raises(EngagementArgumentError, match="YYYY-MM-DD"):
        stickiness(start="last week")
