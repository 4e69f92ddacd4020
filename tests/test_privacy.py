"""Privacy (issue 17): forget a person everywhere, suppress them, prune by retention.

The main scenario forgets a user with two devices (two anonymous ids linked by
identify), touchpoints, conversions, activity in three months, account
membership, a recorded statistic about them and a rejected line: afterwards the
raw tables and every relation dbt builds are free of them after an incremental
build, equal to a full refresh, aggregates changed by exactly their contribution,
and a re-load of the original file adds nothing for them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from trackhouse import privacy
from trackhouse.engine import get_engine
from trackhouse.errors import ConfigError
from trackhouse.loader import load_files
from trackhouse.privacy import KEY_ENV, SUPPRESSED_REASON, forget, prune, retention_settings
from trackhouse.query import relation

from factories import group, identify, page, statistic, track

ALICE, DEVICE_1, DEVICE_2 = "alice-7f3", "dev-a1-9c", "dev-a2-4e"
FORGOTTEN = (ALICE, DEVICE_1, DEVICE_2)
VARS = {"as_of": "2024-03-31", "lookback_days": 3}
# The incremental models (their own tables) and every mart.
COMPARED = {
    "activity_hourly": "user_id, hour_start",
    "int_activity_days_accumulated": "user_id, activity_date",
    "int_activity_periods_counted": "grain, period_start_date",
    "int_subscription_periods_counted": "subscription_key, period_kind, period_index",
    "active_users": "grain, period_start",
    "usage_calendar_monthly": "period_start",
    "usage_daily": "period_start",
    "usage_subscription_periods": "account_id, period_kind, period_index",
    "statistics_by_date": "metric, period, date",
    "statistics_by_date_and_object": "metric, period, date, object_type, object_id",
    "identities": "anonymous_id",
    "int_touchpoints_cleaned": "touchpoint_id",
    "touchpoints": "touchpoint_id",
    "conversions": "conversion_id",
    "conversion_attribution": "conversion_id, attribution_model",
    "attribution_credits": "conversion_id, attribution_model, touchpoint_id",
}
# Columns that record when a row was built, not what it says.
BUILD_TIME_COLUMNS = {"first_built_at", "counted_through", "last_received_at"}


def scenario() -> list[dict[str, Any]]:
    """Alice (two devices, account acme), Bob (acme) and Carol (beta)."""
    campaign = "https://shop.example/landing?utm_source=news&utm_medium=email&utm_campaign=spring"
    ads = "https://shop.example/?utm_source=google&utm_medium=cpc&gclid=g-1"
    events = [
        # Alice's devices see campaigns before she logs in on each of them.
        page("2024-01-05T09:00:00Z", campaign, anonymous_id=DEVICE_1),
        page("2024-01-05T10:00:00Z", ads, anonymous_id=DEVICE_2),
        identify(
            "2024-01-05T11:00:00Z",
            ALICE,
            anonymous_id=DEVICE_1,
            created_at="2024-01-05T11:00:00Z",
            account_id="acme",
        ),
        identify("2024-01-06T08:00:00Z", ALICE, anonymous_id=DEVICE_2),
        group("2024-01-05T11:05:00Z", ALICE, "acme"),
        track("2024-01-07T12:00:00Z", "purchase", user_id=ALICE, value=40, currency="EUR"),
        track("2024-02-10T12:00:00Z", "view", user_id=ALICE),
        track("2024-03-15T12:00:00Z", "purchase", anonymous_id=DEVICE_2, value=25, currency="EUR"),
        statistic(
            "2024-03-01T00:00:00Z",
            "users.user_count",
            7,
            "day",
            "2024-03-01",
            object_type="user",
            object_id=ALICE,
        ),
        # Bob, same account, same months.
        page("2024-01-04T09:00:00Z", campaign, anonymous_id="dev-b1"),
        identify(
            "2024-01-04T10:00:00Z",
            "bob",
            anonymous_id="dev-b1",
            created_at="2024-01-04T10:00:00Z",
            account_id="acme",
        ),
        group("2024-01-04T10:05:00Z", "bob", "acme", subscription_start="2024-01-01T00:00:00Z"),
        track("2024-01-08T12:00:00Z", "purchase", user_id="bob", value=10, currency="EUR"),
        track("2024-02-11T12:00:00Z", "view", user_id="bob"),
        track("2024-03-16T12:00:00Z", "view", user_id="bob"),
        # Carol, another account, active in February only.
        identify(
            "2024-02-01T10:00:00Z", "carol", created_at="2024-02-01T10:00:00Z", account_id="beta"
        ),
        group("2024-02-01T10:05:00Z", "carol", "beta", subscription_start="2024-02-01T00:00:00Z"),
        track("2024-02-02T12:00:00Z", "purchase", user_id="carol", value=5, currency="EUR"),
    ]
    return events


def rejected_line_of_alice() -> bytes:
    """A line that is rejected (no time zone) and names Alice."""
    return orjson.dumps(
        {
            "type": "track",
            "messageId": "bad-1",
            "timestamp": "2024-01-09T10:00:00",
            "userId": ALICE,
            "event": "view",
        }
    )


def run(warehouse, vars: dict[str, Any], *args: str) -> None:
    """Seeds and models, without tests (the data tests run once, after the forget)."""
    skip = ("--exclude-resource-type", "unit_test", "--exclude-resource-type", "test")
    warehouse.dbt("build", *skip, *args, vars=vars)


def snapshot(warehouse) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name, order in COMPARED.items():
        rows = warehouse.query(
            f"select * from {relation(name, warehouse.settings)} order by {order}"
        )
        out[name] = [{k: v for k, v in r.items() if k not in BUILD_TIME_COLUMNS} for r in rows]
    return out


def mentions(value: Any) -> bool:
    return value is not None and any(i in str(value) for i in FORGOTTEN)


def relations_mentioning(warehouse, schema: str) -> dict[str, int]:
    """Every table and view of a schema, with the number of its rows that mention a
    forgotten id in any column."""
    names = warehouse.query(
        "select table_name from information_schema.tables where table_schema = :schema",
        {"schema": schema},
    )
    found = {}
    for row in names:
        name = row["table_name"]
        rows = warehouse.query(f'select * from "{schema}"."{name}"')
        hits = sum(1 for r in rows if any(mentions(v) for v in r.values()))
        if hits:
            found[name] = hits
    return found


def statistic_value(snap, metric: str, period: str, day: date) -> Decimal:
    rows = [
        r
        for r in snap["statistics_by_date"]
        if r["metric"] == metric and r["period"] == period and r["date"] == day
    ]
    return rows[0]["value"] if rows else Decimal(0)


def test_forget_a_person_everywhere(warehouse):
    events = scenario()
    path = warehouse.write_ndjson([*events, rejected_line_of_alice()], "export.ndjson")
    first = load_files([path], settings=warehouse.settings)
    assert (first.accepted, first.rejected) == (len(events), 1)
    run(warehouse, VARS)
    before = snapshot(warehouse)
    assert relations_mentioning(warehouse, warehouse.settings.mart_schema)  # Alice is there

    report = forget([ALICE], settings=warehouse.settings)
    assert report.linked_ids == 2  # both devices
    assert report.rows == {
        "activity": 5,  # identify x2, group, two tracks with her userId
        "touchpoints": 2,  # one per device
        "conversion_events": 3,  # every track is a conversion event
        "identity_links": 2,
        "users": 2,
        "accounts": 1,
        "statistics": 1,  # recorded with her as the object
        "events": 9,  # the ledger: every accepted event of hers
        "rejected": 1,  # the line that names her
    }
    assert relations_mentioning(warehouse, warehouse.settings.raw_schema) == {}
    logged = warehouse.raw("deletion_requests")
    assert [(r["id_count"], r["linked_id_count"], r["rows_deleted"]) for r in logged] == [
        (1, 2, report.rows_deleted)
    ]
    again = forget([ALICE], settings=warehouse.settings)  # idempotent
    assert again.rows_deleted == 0

    # The next incremental build: every relation dbt builds is free of her...
    warehouse.dbt("build", "--exclude-resource-type", "unit_test", vars=VARS)
    assert relations_mentioning(warehouse, warehouse.settings.mart_schema) == {}
    after = snapshot(warehouse)
    # ... and equals a full refresh.
    run(warehouse, VARS, "--full-refresh")
    assert snapshot(warehouse) == after

    # Aggregates changed by exactly her contribution.
    def monthly(snap, grain="month"):
        return {
            r["period_start"]: r["active_users"]
            for r in snap["active_users"]
            if r["grain"] == grain
        }

    jan, feb, mar = (datetime(2024, m, 1) for m in (1, 2, 3))
    assert {k: monthly(before)[k] - monthly(after)[k] for k in monthly(before)} == {
        jan: 1,
        feb: 1,
        mar: 0,  # her March conversion was anonymous: no activity
    }
    calendar = {r["period_start"]: r for r in before["usage_calendar_monthly"]}
    for row in after["usage_calendar_monthly"]:
        assert calendar[row["period_start"]]["registered_users"] - row["registered_users"] == 1
    acme = [
        (r["period_index"], r["active_users"])
        for r in before["usage_subscription_periods"]
        if r["account_id"] == "acme" and r["period_kind"] == "month"
    ]
    acme_after = [
        (r["period_index"], r["active_users"])
        for r in after["usage_subscription_periods"]
        if r["account_id"] == "acme" and r["period_kind"] == "month"
    ]
    assert [b - a for (_, b), (_, a) in zip(acme, acme_after, strict=True)] == [1, 1, 0]
    as_of = date(2024, 3, 31)
    value = "conversion_value"
    assert statistic_value(before, value, "lifetime", as_of) - statistic_value(
        after, value, "lifetime", as_of
    ) == Decimal(65)
    assert (
        statistic_value(before, "touchpoint_count", "lifetime", as_of)
        - statistic_value(after, "touchpoint_count", "lifetime", as_of)
        == 2
    )
    assert (
        statistic_value(before, "active_users", "lifetime", as_of)
        - statistic_value(after, "active_users", "lifetime", as_of)
        == 1
    )
    # Row-level marts lose exactly her rows; everyone else's are unchanged.
    for name in (
        "conversions",
        "conversion_attribution",
        "attribution_credits",
        "touchpoints",
        "identities",
    ):
        kept = [r for r in before[name] if not any(mentions(v) for v in r.values())]
        assert after[name] == kept, name
    assert len(after["conversions"]) == len(before["conversions"]) - 3

    # A re-load of the original export adds nothing for her: suppressed.
    reload = load_files([path], settings=warehouse.settings)
    assert reload.balanced
    assert (reload.accepted, reload.rejected) == (0, 9 + 1)  # her 9 events, the bad line again
    assert sum(r.reason == SUPPRESSED_REASON for r in reload.rejections) == 9
    # The malformed line that names her is rejected again, without its payload.
    assert relations_mentioning(warehouse, warehouse.settings.raw_schema) == {}
    suppressed = [r for r in warehouse.raw("rejected") if r["reason"] == SUPPRESSED_REASON]
    assert len(suppressed) == 10 and {r["payload"] for r in suppressed} == {""}


def test_prune_blanks_only_what_is_older(warehouse):
    now = datetime(2024, 6, 1, 12, tzinfo=UTC)
    old, recent = "2024-01-10T10:00:00Z", "2024-05-31T10:00:00Z"
    url = "https://shop.example/p?email=a%40b.c&utm_source=news&utm_campaign=x&utm_source=mail#top"
    referrer = "https://search.example/q?query=private+words"
    bot = "Mozilla/5.0 (compatible; Googlebot/2.1)"
    human = "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0"
    events = [
        page(old, url, anonymous_id="v1", referrer=referrer, user_agent=human, message_id="old-1"),
        page(old, url, anonymous_id="v2", referrer=referrer, user_agent=bot, message_id="old-2"),
        page(
            recent, url, anonymous_id="v3", referrer=referrer, user_agent=human, message_id="new-1"
        ),
        track(old, "purchase", anonymous_id="v1", value=3, message_id="old-3"),
    ]
    path = warehouse.write_ndjson([*events, b'{"broken'], "visits.ndjson")
    assert load_files([path], settings=warehouse.settings).accepted == 4
    # The rejected line is old too (its age is counted from its receipt).
    with get_engine(warehouse.settings).begin() as conn:
        conn.execute(
            sa.text(f'update "{warehouse.settings.raw_schema}".rejected set received_at = :t'),
            {"t": datetime(2024, 1, 10)},
        )
    vars = {
        "as_of": "2024-05-31",
        "raw_retention_days": 30,
        "url_query_retention_days": 60,
        "user_agent_retention_days": 90,
    }
    run(warehouse, vars)
    before = snapshot(warehouse)
    assert retention_settings(warehouse.settings) == {
        "raw_retention_days": 30,
        "url_query_retention_days": 60,
        "user_agent_retention_days": 90,
    }
    raw_before = {name: warehouse.raw(name) for name in ("events", "touchpoints", "rejected")}

    counted = prune(warehouse.settings, dry_run=True, now=now)
    assert {name: warehouse.raw(name) for name in raw_before} == raw_before  # dry run
    done = prune(warehouse.settings, now=now)  # the recorded vars
    assert (
        done.rows
        == counted.rows
        == {
            "payloads blanked": 3,
            "rejected deleted": 1,
            "urls trimmed": 2,
            "user agents blanked": 2,
        }
    )
    ledger = {r["message_id"]: r["payload"] for r in warehouse.raw("events")}
    assert {k for k, v in ledger.items() if v == "{}"} == {"old-1", "old-2", "old-3"}
    assert orjson.loads(ledger["new-1"])["context"]["page"]["url"] == url
    assert warehouse.raw("rejected") == []
    points = {r["event_id"]: r for r in warehouse.raw("touchpoints")}
    trimmed = "https://shop.example/p?utm_source=news&utm_campaign=x&utm_source=mail"
    assert (points["old-1"]["url"], points["old-1"]["referrer"]) == (
        trimmed,
        "https://search.example/q",
    )
    assert (points["old-1"]["user_agent"], points["old-2"]["user_agent"]) == (None, "bot")
    assert (points["new-1"]["url"], points["new-1"]["referrer"], points["new-1"]["user_agent"]) == (
        url,
        referrer,
        human,
    )
    assert prune(warehouse.settings, now=now).total == 0  # nothing older is left

    # An incremental build cleans the rewritten rows again: it equals a full refresh,
    # and no URL from before the prune is left in what dbt built.
    run(warehouse, vars)
    incremental = snapshot(warehouse)
    run(warehouse, vars, "--full-refresh")
    after = snapshot(warehouse)
    assert incremental == after
    cleaned = {r["touchpoint_id"]: r for r in after["int_touchpoints_cleaned"]}
    assert (cleaned["old-1"]["url"], cleaned["old-1"]["referrer"]) == (
        trimmed,
        "https://search.example/q",
    )
    assert (cleaned["old-2"]["user_agent"], cleaned["old-2"]["is_bot"]) == ("bot", True)
    # The marts keep their aggregates.
    for name in COMPARED:
        if name in ("touchpoints", "int_touchpoints_cleaned"):  # URLs follow the raw table
            strip = ("url", "referrer", "user_agent", "load_sequence")
            assert [{k: v for k, v in r.items() if k not in strip} for r in after[name]] == [
                {k: v for k, v in r.items() if k not in strip} for r in before[name]
            ]
        else:
            assert after[name] == before[name], name


def test_prune_without_retention_settings_does_nothing(warehouse):
    path = warehouse.write_ndjson(
        [
            page(
                "2020-01-01T00:00:00Z",
                "https://x.example/?utm_source=a",
                anonymous_id="v",
                user_agent="Firefox",
            )
        ]
    )
    load_files([path], settings=warehouse.settings)
    report = prune(warehouse.settings, now=datetime.now(UTC) + timedelta(days=3650))
    assert report.rows == {} and "no retention is set" in report.summary()
    assert warehouse.raw("touchpoints")[0]["user_agent"] == "Firefox"


def test_dagster_prune_job_applies_the_retention(warehouse):
    """The daily schedule's job runs prune on the configured target."""
    from orchestration.resources import Warehouse
    from orchestration.schedules import PRUNE_CRON, build_prune_schedule

    old = page("2020-01-01T00:00:00Z", "https://x.example/?utm_source=a&q=secret", anonymous_id="v")
    load_files([warehouse.write_ndjson([old])], settings=warehouse.settings)
    schedule = build_prune_schedule()
    assert schedule.cron_schedule == PRUNE_CRON
    resource = Warehouse(target=warehouse.target, project_dir=str(warehouse.settings.project_dir))
    result = schedule.job.execute_in_process(resources={"warehouse": resource})
    assert result.success
    assert result.output_for_node("prune_expired") == 0  # no retention set: nothing pruned
    assert warehouse.raw("touchpoints")[0]["url"].endswith("q=secret")
    config = {
        "ops": {
            "prune_expired": {"config": {"raw_retention_days": 30, "url_query_retention_days": 30}}
        }
    }
    result = schedule.job.execute_in_process(run_config=config, resources={"warehouse": resource})
    assert result.output_for_node("prune_expired") == 2  # the payload and the URL
    assert warehouse.raw("touchpoints")[0]["url"] == "https://x.example/?utm_source=a"


def test_suppression_keeps_no_clear_id_and_needs_its_key(warehouse, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "the first secret")
    events = [track("2024-01-01T10:00:00Z", "view", user_id="zed-31")]
    load_files([warehouse.write_ndjson(events, "zed.ndjson")], settings=warehouse.settings)
    forget(["zed-31"], settings=warehouse.settings)
    for name in ("deletion_requests", "suppressions", "privacy_key"):
        assert not any("zed-31" in str(v) for r in warehouse.raw(name) for v in r.values())
    assert warehouse.raw("privacy_key") == []  # the key came from the environment
    again = [track("2024-01-02T10:00:00Z", "view", user_id="zed-31")]
    report = load_files(
        [warehouse.write_ndjson(again, "again.ndjson")], settings=warehouse.settings
    )
    assert (report.accepted, report.rejected) == (0, 1)
    # With another key the forgotten ids would be accepted again: the loader refuses.
    monkeypatch.setenv(KEY_ENV, "another secret")
    privacy._invalidate(warehouse.settings)
    with pytest.raises(ConfigError, match=KEY_ENV):
        load_files([warehouse.write_ndjson(again, "third.ndjson")], settings=warehouse.settings)


def test_the_spool_drain_rejects_a_forgotten_id(warehouse):
    """The Python API, the middlewares and the collector append to a spool; its drain
    applies the suppression check like `trackhouse load`."""
    from trackhouse.spool import Spool, drain

    forget(["gone-1"], settings=warehouse.settings)
    directory = warehouse.tmp / "spool"
    with Spool(directory, source="api") as spool:
        spool.append(
            [
                track("2024-01-01T10:00:00Z", "view", user_id="gone-1"),
                track("2024-01-01T11:00:00Z", "view", user_id="stays-2"),
            ]
        )
    report = drain(directory, settings=warehouse.settings)
    assert (report.accepted, report.rejected) == (1, 1)
    assert [r.reason for r in report.rejections] == [SUPPRESSED_REASON]
    assert [r["user_id"] for r in warehouse.raw("activity")] == ["stays-2"]
