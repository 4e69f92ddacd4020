"""The Python API: calls go to a durable spool and return; a drain writes them; bad calls
raise at once and are recorded in `rejected`."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from trackhouse import InvalidEventError, Tracker
from trackhouse.engine import ensure_schema
from trackhouse.spool import drain

T0 = datetime(2024, 3, 31, 23, 10, tzinfo=UTC)


def test_calls_are_spooled_and_drained_on_close(warehouse):
    ensure_schema(warehouse.settings)  # what `trackhouse init` does
    tracker = Tracker(warehouse.settings, drain="close", flush_interval=0)
    ids = [
        tracker.record_touchpoint("anon-1", f"https://e.example/?utm_source={s}", at=T0)
        for s in "abc"
    ]
    tracker.record_activity("user-1", at=T0)
    assert warehouse.count("events") == 0  # no round trip per call: the calls are in the spool
    spooled = [
        orjson.loads(line)
        for p in tracker.spool_dir.iterdir()
        for line in p.read_bytes().splitlines()
    ]
    assert [m["messageId"] for m in spooled][:3] == ids  # each call's id, before it returned
    tracker.close()  # seals the segment and drains it
    assert warehouse.count("events") == 4
    assert tracker.drained.accepted == 4
    assert list(tracker.spool_dir.iterdir()) == []


def test_background_drain_thread(warehouse):
    with Tracker(
        warehouse.settings, drain="thread", flush_interval=0.1, drain_interval=0.1
    ) as tracker:
        tracker.record_activity("user-1", at=T0)
        deadline = time.monotonic() + 20
        while tracker.drained.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert warehouse.count("activity") == 1  # landed while the tracker is still open


def test_drain_off_leaves_the_spool_to_an_external_drain(warehouse):
    with Tracker(warehouse.settings, drain="off", flush_interval=0) as tracker:
        tracker.record_touchpoint("anon-1", "https://e.example/?gclid=x", at=T0)
    ensure_schema(warehouse.settings)
    assert warehouse.count("events") == 0
    report = drain(tracker.spool_dir, warehouse.settings)  # `trackhouse load --spool DIR`
    assert (report.received, report.accepted) == (1, 1)
    assert warehouse.count("touchpoints") == 1


def test_a_retry_with_the_same_ids_lands_once(warehouse):
    with Tracker(warehouse.settings, drain="close", flush_interval=0) as tracker:
        for _ in range(3):  # the app did not see the first calls return, and retried
            tracker.record_conversion(
                "signup", user_id="u1", conversion_id="c-1", message_id="msg-1", at=T0
            )
            tracker.identify("anon-1", "u1", at=T0, message_id="msg-2")
    assert warehouse.count("events") == 2
    assert [r["conversion_id"] for r in warehouse.raw("conversion_events")] == ["c-1"]


def test_unknown_drain_mode_lists_the_valid_ones(warehouse):
    with pytest.raises(ValueError, match="auto, close, off, thread"):
        Tracker(warehouse.settings, drain="sometimes")


def test_record_activity_writes_once_per_user_per_clock_hour(warehouse):
    with Tracker(warehouse.settings, drain="close", flush_interval=0) as tracker:
        written = [
            tracker.record_activity("user-1", at=T0 + timedelta(minutes=m))
            for m in (0, 10, 49, 50, 51, 110)  # 23:10, 23:20, 23:59 | 00:00, 00:01 | 01:00
        ]
        tracker.record_activity("user-2", at=T0)
    assert written == [True, False, False, True, False, True]
    hours = sorted(
        str(r["occurred_at"])[:13] for r in warehouse.raw("activity") if r["user_id"] == "user-1"
    )
    # Every clock hour with activity is there, across the hour and the month boundary.
    assert hours == ["2024-03-31 23", "2024-04-01 00", "2024-04-01 01"]


def test_threads_share_one_tracker(warehouse):
    with Tracker(warehouse.settings, drain="close", flush_interval=0.05) as tracker:

        def work(k: int) -> None:
            for i in range(500):
                tracker.record_touchpoint(f"anon-{k}-{i}", "https://e.example/?gclid=x", at=T0)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert warehouse.count("touchpoints") == 2000
    assert warehouse.count("events") == 2000


def test_bad_calls_raise_and_are_recorded_as_rejected(warehouse):
    with Tracker(
        warehouse.settings, drain="close", flush_interval=0, allowed_events={"signup"}
    ) as tracker:
        with pytest.raises(InvalidEventError, match="'purchase' is not allowed"):
            tracker.record_conversion("purchase", user_id="u1", at=T0)
        with pytest.raises(InvalidEventError, match="naive datetime"):
            tracker.record_activity("u1", at=datetime(2024, 1, 1, 12))
        with pytest.raises(InvalidEventError, match="not a 3-letter"):
            tracker.record_conversion("signup", user_id="u1", currency="euro", at=T0)
        with pytest.raises(InvalidEventError, match="period 'year' is not one of"):
            tracker.record_statistic("shop.orders", 3, "year")
        tracker.record_conversion("signup", user_id="u1", at=T0)
        with pytest.raises(InvalidEventError, match=r"date_joined=.* naive datetime"):
            tracker.record_user("u1", date_joined=datetime(2024, 1, 1))
    rejected = warehouse.raw("rejected")
    assert len(rejected) == 5  # every bad call is recorded, naive datetimes too
    assert all(r["source"] == "api" and r["reason"] for r in rejected)
    assert warehouse.count("conversion_events") == 1


def test_conversion_lifecycle_by_id(warehouse):
    with Tracker(warehouse.settings, drain="close", flush_interval=0) as tracker:
        cid = tracker.record_conversion(
            "purchase",
            user_id="u1",
            value="49.90",
            currency="usd",
            is_confirmed=False,
            at=T0,
            custom_data={"plan": "pro"},
        )
        tracker.confirm_conversion(cid, at=T0 + timedelta(hours=1))
        tracker.deactivate_conversion(cid, at=T0 + timedelta(days=3))
    rows = sorted(warehouse.raw("conversion_events"), key=lambda r: r["occurred_at"])
    assert [r["conversion_id"] for r in rows] == [cid] * 3
    assert [(r["is_confirmed"], r["is_active"]) for r in rows] == [
        (False, True),  # a conversion states its whole state (active by default)
        (True, None),  # an update by id states only what it changes
        (None, False),
    ]
    assert rows[0]["event"] == "purchase" and rows[1]["event"] is None
    assert str(rows[0]["value"]).startswith("49.9") and rows[0]["currency"] == "USD"


def test_times_are_stored_in_utc(warehouse):
    amsterdam = timezone(timedelta(hours=2))
    with Tracker(warehouse.settings, drain="close", flush_interval=0) as tracker:
        tracker.record_user(
            "u1",
            date_joined=datetime(2024, 5, 1, 9, 30, tzinfo=amsterdam),
            account_id="acme",
            at=T0,
        )
        tracker.record_account(
            "acme", subscription_start=datetime(2024, 1, 31, tzinfo=UTC), name="Acme", at=T0
        )
        tracker.identify("anon-9", "u1", at=T0)
    (user, *_) = [r for r in warehouse.raw("users") if r["date_joined"] is not None]
    assert str(user["date_joined"]) == "2024-05-01 07:30:00"
    (account,) = warehouse.raw("accounts")
    assert (account["account_id"], account["name"]) == ("acme", "Acme")
    (link,) = warehouse.raw("identity_links")
    assert (link["anonymous_id"], link["user_id"]) == ("anon-9", "u1")
    # record_user and record_account are not activity; identify (a login) is.
    assert [r["user_id"] for r in warehouse.raw("activity")] == ["u1"]


def test_a_call_no_rule_foresaw_is_rejected_not_crashed(warehouse):
    with Tracker(warehouse.settings, drain="close", flush_interval=0) as tracker:
        with pytest.raises(InvalidEventError):  # never a TypeError/OverflowError
            # an integer orjson cannot encode (over 64 bits) in the custom data
            tracker.record_conversion("signup", user_id="u1", custom_data={"n": 2**80}, at=T0)
        tracker.record_conversion("signup", user_id="u1", at=T0)
    (rejected,) = warehouse.raw("rejected")
    assert rejected["reason"] and rejected["source"] == "api"
    assert warehouse.count("conversion_events") == 1


def test_a_tracker_inherited_through_fork_works_in_the_child(warehouse):
    """gunicorn --preload: the Tracker (and the engines' pools) exist before the
    workers fork; each worker writes its own segment and drains on its own."""
    with Tracker(warehouse.settings, drain="close", flush_interval=0.05) as tracker:
        tracker.record_activity("parent-before", at=T0)
        tracker.flush()  # the parent has used the warehouse (pooled connections)
        pid = os.fork()
        if pid == 0:
            code, before = 1, tracker.drained.accepted
            try:
                for i in range(20):
                    tracker.record_touchpoint(f"child-{i}", "https://e.example/?gclid=x", at=T0)
                tracker.close()
                code = 0 if tracker.drained.accepted - before == 20 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        tracker.record_activity("parent-after", at=T0)
    assert warehouse.count("touchpoints") == 20
    assert {r["user_id"] for r in warehouse.raw("activity")} == {"parent-before", "parent-after"}
