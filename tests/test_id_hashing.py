"""Hashing ids at ingestion (issue 17): TRACKHOUSE_HASH_IDS=1 makes every load store
the keyed hash of user, anonymous and previous ids (and of a person statistic's
object id) instead of the ids as sent, on the Python parser's path and the
vectorised one alike, in the typed rows, the ledger payloads and the rejected lines.
Stitching and attribution work on the hashes; forget takes the clear id; a load with
another key, or with hashing turned off, is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from trackhouse import privacy
from trackhouse.errors import ConfigError
from trackhouse.fastpath import FastPath
from trackhouse.loader import LoadReport, load_files, parse_chunk
from trackhouse.privacy import HASH_ENV, KEY_ENV, forget, hash_id
from trackhouse.schema import DATA_TABLES
from trackhouse.writer import batch_table

from factories import alias, group, identify, page, statistic, track

# Every clear id holds "h4sh"; hashes are hex, so "h4sh" in any stored value is a leak.
ALICE, DEVICE, OLD_ID, BOB = "alice-h4sh", "dev-h4sh-1", "old-h4sh-2", "bob-h4sh"
MARK = "h4sh"
CAMPAIGN = "https://shop.example/landing?utm_source=news&utm_medium=email&utm_campaign=spring"
ADS = "https://shop.example/?utm_source=google&utm_medium=cpc&gclid=g-1"
VARS = {"as_of": "2024-03-31", "lookback_days": 3}


def scenario() -> list[dict | bytes]:
    return [
        # Alice: an anonymous campaign visit (a plain page view: the vectorised path),
        # then she signs up on that device, and an older id is aliased to her.
        page("2024-03-01T09:00:00Z", CAMPAIGN, anonymous_id=DEVICE, message_id="p-1"),
        identify(
            "2024-03-01T10:00:00Z",
            ALICE,
            anonymous_id=DEVICE,
            created_at="2024-03-01T10:00:00Z",
            account_id="acme",
        ),
        alias("2024-03-01T10:01:00Z", OLD_ID, ALICE),
        group("2024-03-01T10:02:00Z", ALICE, "acme"),
        track(
            "2024-03-02T12:00:00Z",
            "purchase",
            user_id=ALICE,
            message_id="buy-1",
            value=40,
            currency="EUR",
        ),
        statistic(
            "2024-03-02T00:00:00Z",
            "users.logins",
            3,
            "day",
            "2024-03-02",
            object_type="user",
            object_id=ALICE,
        ),
        # Bob: a logged-in visit from an ad, then a purchase.
        page("2024-03-03T09:00:00Z", ADS, user_id=BOB, message_id="p-2"),
        track("2024-03-03T12:00:00Z", "purchase", user_id=BOB, message_id="buy-2", value=10),
        # Rejected lines that name Alice: valid JSON (no time zone) and malformed JSON.
        orjson.dumps(
            {
                "type": "track",
                "messageId": "bad-1",
                "timestamp": "2024-03-04T10:00:00",
                "userId": ALICE,
            }
        ),
        b'{"type": "track", "userId": "' + ALICE.encode() + b'", ',
    ]


def leaks(warehouse) -> dict[str, int]:
    """Rows of every raw table (typed, ledger, rejected, privacy) with a clear id anywhere."""
    schema = warehouse.settings.raw_schema
    names = warehouse.query(
        "select table_name from information_schema.tables where table_schema = :schema",
        {"schema": schema},
    )
    found = {}
    for row in names:
        rows = warehouse.query(f'select * from "{schema}"."{row["table_name"]}"')
        hits = sum(1 for r in rows if any(MARK in str(v) for v in r.values()))
        if hits:
            found[row["table_name"]] = hits
    return found


def test_hashed_ids_leave_no_clear_id_and_still_stitch_and_attribute(warehouse, monkeypatch):
    monkeypatch.setenv(HASH_ENV, "1")
    monkeypatch.setenv(KEY_ENV, "the warehouse secret")
    key = privacy._configured_key()
    assert key is not None

    def h(value: str) -> str:
        return hash_id(value, key)

    path = warehouse.write_ndjson(scenario(), "export.ndjson")
    report = load_files([path], settings=warehouse.settings)
    assert (report.accepted, report.rejected) == (8, 2)
    assert leaks(warehouse) == {}
    # Every table holds the hashes where the ids were.
    assert {r["user_id"] for r in warehouse.raw("activity")} == {h(ALICE), h(BOB)}
    links = {(r["anonymous_id"], r["user_id"]) for r in warehouse.raw("identity_links")}
    assert links == {(h(DEVICE), h(ALICE)), (h(OLD_ID), h(ALICE))}
    assert [r["object_id"] for r in warehouse.raw("statistics")] == [h(ALICE)]
    assert [r["account_id"] for r in warehouse.raw("accounts")] == ["acme"]  # not a person
    ledger = {r["message_id"]: orjson.loads(r["payload"]) for r in warehouse.raw("events")}
    assert ledger["p-1"]["anonymousId"] == h(DEVICE)  # the vectorised path's row
    assert ledger["p-1"]["context"]["page"]["url"] == CAMPAIGN  # the rest is kept
    assert ledger["buy-1"]["userId"] == h(ALICE)
    rejected = {r["line_number"]: r for r in warehouse.raw("rejected")}
    assert orjson.loads(rejected[9]["payload"])["userId"] == h(ALICE)
    assert rejected[10]["payload"] == ""
    assert "not kept" in rejected[10]["reason"]

    # Stitching and attribution work on the hashes.
    warehouse.dbt(
        "build", "--select", "+conversion_attribution", "+identities", "--exclude-resource-type",
        "unit_test", vars=VARS,
    )  # fmt: skip
    identities = {r["anonymous_id"]: r for r in warehouse.table("identities")}
    assert identities[h(DEVICE)]["user_id"] == h(ALICE)
    assert identities[h(OLD_ID)]["user_id"] == h(ALICE)
    credited = {
        r["conversion_id"]: r
        for r in warehouse.table("conversion_attribution")
        if r["attribution_model"] == "first_touch"
    }
    assert credited["buy-1"]["utm_source"] == "news"  # her anonymous visit, stitched
    assert credited["buy-1"]["stitched_id"] == h(ALICE)
    assert credited["buy-2"]["utm_source"] == "google"

    # forget takes the clear id: the hashed rows go, and a re-load brings nothing back.
    gone = forget([ALICE], settings=warehouse.settings)
    assert gone.linked_ids == 2  # the device and the aliased id
    assert gone.rows["identity_links"] == 2 and gone.rows["rejected"] == 1
    assert gone.rows["statistics"] == 1
    remaining = {r["user_id"] for r in warehouse.raw("activity")}
    assert remaining == {h(BOB)}
    assert not [r for r in warehouse.raw("touchpoints") if r["anonymous_id"] == h(DEVICE)]
    again = load_files([path], settings=warehouse.settings)
    assert again.accepted == 0
    assert {r["user_id"] for r in warehouse.raw("activity")} == {h(BOB)}
    assert leaks(warehouse) == {}


def test_both_parser_paths_hash_alike(warehouse, monkeypatch):
    """The vectorised path and the Python parser give the same hashed rows."""
    monkeypatch.setenv(HASH_ENV, "1")
    privacy.enable_id_hashing(warehouse.settings)
    lines = [
        (n, e if isinstance(e, bytes) else orjson.dumps(e))
        for n, e in enumerate(scenario(), start=1)
    ]
    received = datetime(2024, 3, 5, tzinfo=UTC).replace(tzinfo=None)
    tables = []
    fast = FastPath()
    try:
        for path in (fast, None):
            report = LoadReport()
            batch = parse_chunk(
                lines,
                source="x",
                received_at=received,
                allowed_events=None,
                report=report,
                fast=path,
            )
            privacy.suppress(batch, warehouse.settings, report)
            tables.append({t.name: batch_table(batch, t.name).to_pylist() for t in DATA_TABLES})
    finally:
        fast.close()
    vectorised, python = tables
    for name in vectorised:
        key = (
            "rejected_id"
            if name == "rejected"
            else ("message_id" if name == "events" else "event_id")
        )
        assert sorted(vectorised[name], key=lambda r: r[key]) == sorted(
            python[name], key=lambda r: r[key]
        ), name
    assert not any(MARK in str(v) for rows in python.values() for r in rows for v in r.values())


def test_hashing_is_configured_once(warehouse, monkeypatch):
    monkeypatch.setenv(HASH_ENV, "1")
    monkeypatch.setenv(KEY_ENV, "first key")
    first = privacy._key_id(privacy._configured_key())
    load_files([warehouse.write_ndjson(scenario()[:2], "a.ndjson")], settings=warehouse.settings)
    # Another key would store the same person under another id: refused, naming both keys.
    monkeypatch.setenv(KEY_ENV, "second key")
    second = privacy._key_id(privacy._configured_key())
    with pytest.raises(ConfigError, match=f"hashed with key {first}.*current key is {second}"):
        load_files(
            [warehouse.write_ndjson(scenario()[2:4], "b.ndjson")], settings=warehouse.settings
        )
    with pytest.raises(ConfigError, match=KEY_ENV):
        forget([ALICE], settings=warehouse.settings)
    # Without the variable the warehouse still hashes (configured once); =0 is refused.
    monkeypatch.setenv(KEY_ENV, "first key")
    monkeypatch.delenv(HASH_ENV)
    report = load_files(
        [warehouse.write_ndjson(scenario()[2:4], "c.ndjson")], settings=warehouse.settings
    )
    assert report.accepted == 2
    assert leaks(warehouse) == {}
    monkeypatch.setenv(HASH_ENV, "0")
    with pytest.raises(ConfigError, match="configured once"):
        load_files(
            [warehouse.write_ndjson(scenario()[4:5], "d.ndjson")], settings=warehouse.settings
        )


def test_hashing_cannot_start_on_a_warehouse_with_clear_ids(warehouse, monkeypatch):
    load_files(
        [warehouse.write_ndjson(scenario()[:1], "clear.ndjson")], settings=warehouse.settings
    )
    monkeypatch.setenv(HASH_ENV, "1")
    with pytest.raises(ConfigError, match="already holds 1 events"):
        load_files(
            [warehouse.write_ndjson(scenario()[1:2], "more.ndjson")], settings=warehouse.settings
        )


def test_the_spool_drain_hashes_ids(warehouse, monkeypatch):
    """The Python API, the middlewares and the collector load through the spool drain."""
    from trackhouse.spool import Spool, drain

    monkeypatch.setenv(HASH_ENV, "1")
    directory = warehouse.tmp / "spool-h"
    with Spool(directory, source="api") as spool:
        spool.append([track("2024-01-01T10:00:00Z", "view", user_id=ALICE)])
    report = drain(directory, settings=warehouse.settings)
    assert report.accepted == 1
    key = privacy.hashing_key(warehouse.settings)
    assert key is not None
    assert [r["user_id"] for r in warehouse.raw("activity")] == [hash_id(ALICE, key)]
    assert leaks(warehouse) == {}
