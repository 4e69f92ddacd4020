"""Account history (issue 12): a user who moves to another account keeps their
past activity in the old one.

Memberships have validity (account_memberships): a group call or
traits.account_id naming another account moves the user from its time on.
The old account's closed billing periods keep counting the user; the new one
counts them from the move. Checked on the usage mart after an incremental
build, the statistics by account, and the query API (exact to the instant).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from trackhouse.loader import load_files
from trackhouse.query import activity as api
from trackhouse.query.statistics import statistics

from factories import group, identify, track

VARS = {"as_of": "2024-03-31", "report_timezone": "UTC", "lookback_days": 3}
SELECT = [
    "+usage_subscription_periods",
    "+account_memberships",
    "+statistics_by_date_and_object",
    "+users",
    "+accounts",
    "+activity_events",
]
START = "2024-01-01T00:00:00Z"

BEFORE_THE_MOVE = [
    group("2024-01-01T00:00:00Z", "u2", "acme", subscription_start=START),
    group("2024-01-01T00:00:00Z", "u3", "beta", subscription_start=START),
    identify("2024-01-01T10:00:00Z", "u1", created_at="2024-01-01T10:00:00Z", account_id="acme"),
    track("2024-01-05T09:00:00Z", "view", user_id="u3"),
    track("2024-01-15T09:00:00Z", "view", user_id="u1"),
    track("2024-01-20T09:00:00Z", "view", user_id="u2"),
    track("2024-02-10T09:00:00Z", "view", user_id="u1"),
]
# u1 is active in acme's time on Feb 20 at 09:00, moves to beta at 12:00 (the
# group call is an activity too), and is active in March in beta only.
THE_MOVE = [
    track("2024-02-20T09:00:00Z", "view", user_id="u1"),
    group("2024-02-20T12:00:00Z", "u1", "beta"),
    track("2024-03-05T09:00:00Z", "view", user_id="u1"),
    track("2024-03-10T09:00:00Z", "view", user_id="u2"),
]


def load(warehouse, events: list[dict[str, Any]], name: str) -> None:
    report = load_files([warehouse.write_ndjson(events, name)], settings=warehouse.settings)
    assert report.rejected == 0, report.rejections


def build(warehouse) -> None:
    warehouse.dbt(
        "build",
        "--select",
        *SELECT,
        "--exclude-resource-type",
        "unit_test",
        "--indirect-selection",
        "cautious",
        vars=VARS,
    )


def months(warehouse, account_id: str) -> list[tuple[str, int, int]]:
    rows = warehouse.table("usage_subscription_periods", "account_id, period_kind, period_index")
    return [
        (r["label"], r["registered_users"], r["active_users"])
        for r in rows
        if r["account_id"] == account_id and r["period_kind"] == "month"
    ]


def lifetime_active(warehouse, account_id: str, on: date) -> int:
    """activity.active_users by account, lifetime, on a date, as the query API answers
    it (the by-object mart is sparse: lifetime rows are on the dates it changes)."""
    rows = statistics(
        "activity.active_users", "lifetime", on, on, object="account", settings=warehouse.settings
    )
    found = [r["value"] for r in rows if r["object_id"] == account_id]
    return int(found[0]) if found else 0


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_user_who_moves_stays_in_the_old_accounts_closed_periods(warehouse):
    load(warehouse, BEFORE_THE_MOVE, "before.ndjson")
    build(warehouse)
    # (label, registered at the period end, active in the period)
    assert months(warehouse, "acme") == [("Y01 M01", 2, 2), ("Y01 M02", 2, 1), ("Y01 M03", 2, 0)]
    assert months(warehouse, "beta") == [("Y01 M01", 1, 1), ("Y01 M02", 1, 0), ("Y01 M03", 1, 0)]

    load(warehouse, THE_MOVE, "move.ndjson")
    build(warehouse)  # incremental: the closed periods are not rebuilt from scratch

    memberships = warehouse.table("account_memberships", "user_id, stated_at")
    u1 = [
        (m["account_id"], m["valid_from"], m["valid_to"])
        for m in memberships
        if m["user_id"] == "u1"
    ]
    assert u1 == [
        ("acme", None, utc("2024-02-20 12:00:00")),  # the first account: from the beginning
        ("beta", utc("2024-02-20 12:00:00"), None),
    ]
    # acme's January and February keep u1; registered counts the members at
    # the period end (u1 left acme before Mar 1).
    assert months(warehouse, "acme") == [("Y01 M01", 2, 2), ("Y01 M02", 1, 1), ("Y01 M03", 1, 1)]
    # beta counts u1 from the move: February (the group call at 12:00), March.
    assert months(warehouse, "beta") == [("Y01 M01", 1, 1), ("Y01 M02", 2, 1), ("Y01 M03", 2, 1)]
    users = {u["user_id"]: u["account_id"] for u in warehouse.table("users", "user_id")}
    assert users["u1"] == "beta"  # the current account

    # activity.active_users by account: the lifetime count keeps u1 in acme.
    assert lifetime_active(warehouse, "acme", date(2024, 3, 31)) == 2
    assert lifetime_active(warehouse, "beta", date(2024, 3, 31)) == 2
    assert lifetime_active(warehouse, "beta", date(2024, 2, 19)) == 1  # before the move

    # The query API: the same rows (anchors at midnight UTC), and exact instants.
    kw: dict[str, Any] = {"timezone": "UTC", "as_of": "2024-03-31", "settings": warehouse.settings}
    mart = warehouse.table("usage_subscription_periods", "account_id, period_kind, period_index")
    for account in ("acme", "beta"):
        expected = [r for r in mart if r["account_id"] == account and r["period_kind"] == "month"]
        assert api.subscription_usage(kind="month", account_id=account, **kw) == expected
    morning = ("2024-02-20T00:00:00Z", "2024-02-20T12:00:00Z")
    afternoon = ("2024-02-20T12:00:00Z", "2024-02-21T00:00:00Z")
    s = warehouse.settings
    count = api.count_active_users
    assert [count(*morning, account_id=a, settings=s) for a in ("acme", "beta")] == [1, 0]
    assert [count(*afternoon, account_id=a, settings=s) for a in ("acme", "beta")] == [0, 1]


def test_traits_account_id_moves_a_user_as_a_group_call_does(warehouse):
    """identify traits.account_id moves a user from its time on; the API's
    registered users of an account are its members just before each end."""
    move = identify("2024-02-20T12:00:00Z", "u1", account_id="beta")
    load(warehouse, [*BEFORE_THE_MOVE, move], "events.ndjson")
    warehouse.dbt(
        "build",
        "--select",
        "+account_memberships",
        "+users",
        "+activity_events",
        "--exclude-resource-type",
        "unit_test",
        "--indirect-selection",
        "cautious",
        vars=VARS,
    )
    s = warehouse.settings
    usage = api.subscription_usage(
        kind="month",
        account_id="acme",
        subscription_start=START,
        end="2024-03-01T00:00:00Z",
        timezone="UTC",
        settings=s,
    )
    assert [(r["registered_users"], r["active_users"]) for r in usage] == [(2, 2), (1, 1)]
