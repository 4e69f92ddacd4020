"""Poison lines and calls: each ends accepted or rejected with a precise reason.

Through `trackhouse load` (a real process, a real DuckDB file or PostgreSQL) and
through the Python API: the load completes, the summary balances, a re-run
changes nothing, and what can be stored is stored exactly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from trackhouse import InvalidEventError, Tracker
from trackhouse.parsing import MAX_DEPTH

T = "2024-05-01T10:00:00Z"


def _line(**event) -> bytes:
    return orjson.dumps({"timestamp": T, "anonymousId": "anon-1", **event})


def _stat(mid: str, value, **extra) -> bytes:
    props = {"metric": "shop.orders", "value": value, "period": "day", "date": "2024-05-01"}
    return _line(type="statistic", messageId=mid, properties={**props, **extra})


def _buy(mid: str, value) -> bytes:
    return _line(type="track", messageId=mid, event="purchase", properties={"value": value})


def _page(mid: str, **event) -> bytes:
    base = {"context": {"page": {"url": "https://shop.example/?utm_source=news"}}}
    return _line(type="page", messageId=mid, **{**base, **event})


PAGE = _page("x")[:-1]  # a page view without its closing brace, to append raw JSON to

# line -> the reason it is rejected with (None: it is accepted)
POISON: dict[bytes, str | None] = {
    _stat("stat-1e25", 1e25): None,  # fits numeric(38,6): stored exactly
    _stat("stat-1e32", 1e32): "value 1e+32 is too large: it must be below",
    _stat("stat-digits", 1).replace(b'"value":1', b'"value":' + b"9" * 40): "is too large",
    _stat("stat-underscore", "1_000"): "must be a number",
    _stat("stat-nan", "NaN"): "must be a number",
    _stat("stat-metric", 1, metric="shop.orders\n"): "must be written as 'domain.metric'",
    _stat("stat-date", 1, date="2024-05-01garbage"): "is not a date",
    _buy("buy-1e16", 1e16): "properties.value 1e+16 is too large",
    _buy("buy-rounds-up", "9999999999999999.995"): "is too large",
    _buy("buy-max", "9999999999999999.99"): None,
    _line(
        type="track", messageId="buy-eur-nl", event="purchase", properties={"currency": "EUR\n"}
    ): "is not a 3-letter ISO 4217 code",
    _page("ts-0000", timestamp="0000-01-01T00:00:00Z"): "is not ISO 8601",
    _page("ts-9999", timestamp="9999-12-31T23:59:59-14:00"): "out of range once converted to UTC",
    _page("ts-0001", timestamp="0001-01-01T00:30:00+01:00"): "out of range once converted to UTC",
    _page("url-bracket", context={"page": {"url": "http://[::1/?utm_source=v6"}}): None,
    _page("nul-id", anonymousId="a\x00b"): "anonymousId 'a\\x00b' contains a NUL character",
    _page("nul-prop", properties={"title": "x\x00y"}): "properties.title 'x\\x00y' contains a NUL",
    _page("nul-key", properties={"ti\x00tle": "x"}): "a key of properties 'ti\\x00tle'",
    PAGE + b',"raw":"a\x00b"}': "malformed JSON",
    PAGE + b',"properties":{"x":NaN}}': "malformed JSON",
    PAGE + b',"properties":{"x":1,}}': "malformed JSON",
    PAGE + b',"properties":{"x":1e400}}': "malformed JSON",
    PAGE + b',"type":"track"}': "the key 'type' appears twice",
    PAGE + b',"typ\\u0065":"identify"}': "the key 'type' appears twice",
    PAGE + b',"context":{}}': "the key 'context' appears twice",
    _line(type="track", messageId="dup-event", event="a")[:-1]
    + b',"event":"b"}': "the key 'event' appears twice",
    PAGE + b',"properties":{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}}": (
        f"nested deeper than {MAX_DEPTH} levels"
    ),
    # 600,000 characters but 1.2 MB: the limit counts bytes
    _page("big", properties={"title": "é" * 600_000}): "bytes; events over 1,048,576 bytes",
}


def _rejected_by_line(warehouse) -> dict[int, dict]:
    return {r["line_number"]: r for r in warehouse.raw("rejected")}


def test_poison_lines_through_trackhouse_load(warehouse):
    lines = list(POISON)
    path = warehouse.write_ndjson(lines)
    proc = warehouse.cli("load", str(path), "--format", "json")
    (summary,) = orjson.loads(proc.stdout)
    accepted = [line for line, reason in POISON.items() if reason is None]
    assert summary["received"] == len(lines)
    assert summary["accepted"] == len(accepted)
    assert summary["rejected"] == len(lines) - len(accepted)
    assert summary["received"] == summary["accepted"] + summary["rejected"] + summary["duplicates"]

    rejected = _rejected_by_line(warehouse)
    for number, (line, reason) in enumerate(POISON.items(), start=1):
        if reason is None:
            assert number not in rejected, (line[:80], rejected.get(number))
        else:
            assert reason in rejected[number]["reason"], (line[:80], rejected[number]["reason"])
            assert "internal error" not in rejected[number]["reason"]
    # The NUL byte of a malformed line is kept, shown as an escape PostgreSQL can store.
    assert any("a\\x00b" in r["payload"] for r in rejected.values())

    stats = {r["event_id"]: r["value"] for r in warehouse.raw("statistics")}
    assert stats == {"stat-1e25": Decimal("1e25")}
    values = {r["event_id"]: r["value"] for r in warehouse.raw("conversion_events")}
    assert values == {"buy-max": Decimal("9999999999999999.99")}
    (touchpoint,) = warehouse.raw("touchpoints")
    assert touchpoint["url"] == "http://[::1/?utm_source=v6"

    snapshot = {t: warehouse.raw(t) for t in ("events", "rejected", "statistics", "touchpoints")}
    again = orjson.loads(warehouse.cli("load", str(path), "--format", "json").stdout)[0]
    assert (again["accepted"], again["duplicates"]) == (0, len(accepted))
    assert again["rejected"] == summary["rejected"]
    assert {t: warehouse.raw(t) for t in snapshot} == snapshot


@pytest.mark.parametrize("vectorised", [True, False])
def test_poison_lines_give_the_same_reasons_on_both_paths(warehouse, vectorised):
    from trackhouse.loader import load_files

    report = load_files(
        [warehouse.write_ndjson(list(POISON))], settings=warehouse.settings, vectorised=vectorised
    )
    assert report.balanced and report.rejected == sum(r is not None for r in POISON.values())
    rejected = _rejected_by_line(warehouse)
    for number, reason in enumerate(POISON.values(), start=1):
        if reason is None:
            assert number not in rejected
        else:
            assert reason in rejected[number]["reason"]


T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
FAR_WEST = timezone(timedelta(hours=-14))


def test_poison_calls_through_the_python_api(warehouse):
    deep: dict = {}
    node = deep
    for _ in range(MAX_DEPTH + 5):
        node["x"] = {}
        node = node["x"]
    bad_calls = [
        (lambda t: t.record_statistic("shop.orders", 1e32, "day", at=T0), "is too large"),
        (lambda t: t.record_statistic("shop.orders", 10**5000, "day", at=T0), "is too large"),
        (lambda t: t.record_statistic("shop orders.x", 1, "day", at=T0), "domain.metric"),
        (
            lambda t: t.record_conversion("buy", user_id="u", value=Decimal("1e16"), at=T0),
            "too large",
        ),
        (lambda t: t.record_conversion("buy", user_id="u", currency="EUR\n", at=T0), "3-letter"),
        (
            lambda t: t.record_activity("u", at=datetime(9999, 12, 31, 23, tzinfo=FAR_WEST)),
            "out of range once converted to UTC",
        ),
        (
            lambda t: t.record_user("u", date_joined=datetime(1, 1, 1, tzinfo=timezone.max)),
            "out of range",
        ),
        (lambda t: t.record_touchpoint("a\x00b", "https://e.example/?gclid=1", at=T0), "NUL"),
        (
            lambda t: t.record_conversion("buy", user_id="u", custom_data={"n": "x\x00"}, at=T0),
            "properties.n 'x\\x00' contains a NUL",
        ),
        (
            lambda t: t.record_conversion("buy", user_id="u", custom_data={"s": "\ud800"}, at=T0),
            "cannot be written as JSON",
        ),
        (
            lambda t: t.record_conversion("buy", user_id="u", custom_data={1: "a"}, at=T0),
            "cannot be written as JSON",
        ),
        (
            lambda t: t.record_conversion("buy", user_id="u", custom_data=deep, at=T0),
            f"nested deeper than {MAX_DEPTH}",
        ),
        (
            lambda t: t.record_conversion(
                "buy", user_id="u", custom_data={"blob": "é" * 600_000}, at=T0
            ),
            "bytes",
        ),
    ]
    with Tracker(warehouse.settings, drain="close", flush_interval=0) as tracker:
        for call, reason in bad_calls:
            with pytest.raises(InvalidEventError, match=re.escape(reason)):
                call(tracker)
        # What urlsplit refuses is still a page view with tracking parameters.
        tracker.record_touchpoint("anon-1", "http://[::1/?utm_source=v6", at=T0)
        tracker.record_statistic("shop.orders", 1e25, "day", at=T0)
    rejected = warehouse.raw("rejected")
    assert len(rejected) == len(bad_calls)
    assert all(r["source"] == "api" and "internal error" not in r["reason"] for r in rejected)
    assert [r["url"] for r in warehouse.raw("touchpoints")] == ["http://[::1/?utm_source=v6"]
    assert [r["value"] for r in warehouse.raw("statistics")] == [Decimal("1e25")]
    assert warehouse.count("events") == 2
