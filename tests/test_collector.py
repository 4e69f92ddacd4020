"""The collector over real HTTP (uvicorn on loopback): keys, limits, bad input, the spool
bound, durability under SIGKILL, and the drain into the warehouse (both targets)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from trackhouse.collector import CollectorConfig, hash_write_key, load_config
from trackhouse.collector.messages import prepare
from trackhouse.errors import ConfigError
from trackhouse.spool import drain

from collector_server import OTHER_KEY, WRITE_KEY, basic, start_collector


def event(i: int | str, **extra: object) -> dict[str, object]:
    return {
        "type": "track",
        "event": "signup",
        "userId": f"user-{i}",
        "messageId": f"msg-{i}",
        "timestamp": "2026-03-01T10:00:00Z",
        **extra,
    }


# -- configuration and message preparation (no server) ----------------------------------
def test_write_keys_are_stored_hashed_from_every_source(tmp_path, monkeypatch):
    toml = tmp_path / "collector.toml"
    toml.write_text(
        "[collector]\ncors_origins = ['https://shop.example/']\n"
        f"[collector.write_keys]\nweb = '{hash_write_key('k1')}'\n"
    )
    monkeypatch.setenv("TRACKHOUSE_COLLECTOR_WRITE_KEYS", f"ios={hash_write_key('k2')}")
    config = load_config(config_file=toml, write_keys=["backend=k3"])
    assert {config.source_for(k) for k in ("k1", "k2", "k3")} == {"web", "ios", "backend"}
    assert config.source_for("k4") is None and config.source_for(None) is None
    assert "k3" not in config.to_json()  # only hashes are kept
    assert config.cors_origins == ("https://shop.example",)
    assert CollectorConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "item, message",
    [
        ("web", "has no '='"),
        ("web=sha256:abc", "64 hex digits"),
        ("we b=k", "not valid"),
    ],
)
def test_bad_write_key_settings_name_the_fix(item, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_keys=[item])


def test_clock_skew_batch_context_and_message_ids():
    received = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    config = load_config(write_keys=["web=k"])
    payload = {
        "batch": [
            # The device clock is 1 hour fast: sentAt and its timestamp both are.
            {
                "type": "track",
                "event": "a",
                "userId": "u",
                "timestamp": "2026-03-01T12:59:50Z",
                "context": {"ip": "1.2.3.4"},
            },
            # No sentAt correction possible without a time: receivedAt.
            {"type": "page", "userId": "u", "sentAt": None},
            # An explicit originalTimestamp is the client time.
            {"type": "identify", "userId": "u", "originalTimestamp": "2026-03-01T12:59:00+01:00"},
        ],
        "sentAt": "2026-03-01T13:00:00Z",
        "context": {"library": {"name": "x"}, "ip": "0.0.0.0"},
        "integrations": {"All": False},
    }
    prepared = prepare(payload, "batch", source="web", received_at=received, config=config)
    first, second, third = (json.loads(line) for line in prepared.lines)
    assert first["timestamp"] == "2026-03-01T11:59:50.000Z"  # received - 10 s
    assert first["originalTimestamp"] == "2026-03-01T12:59:50Z"
    assert first["receivedAt"] == "2026-03-01T12:00:00.000Z"
    assert first["context"] == {"library": {"name": "x"}, "ip": "1.2.3.4"}  # message wins
    assert first["integrations"] == {"All": False}
    assert second["timestamp"] == "2026-03-01T12:00:00.000Z"
    assert third["timestamp"] == "2026-03-01T10:59:00.000Z"  # 11:59 UTC client, 1 h fast
    assert first["projectId"] == "web"
    # No messageId: one derived from the content, so a retry of the same call lands once.
    again = prepare(payload, "batch", source="web", received_at=received, config=config)
    assert [json.loads(x)["messageId"] for x in again.lines] == [
        m["messageId"] for m in (first, second, third)
    ]
    # Without sentAt an explicit timestamp is kept exactly.
    single = prepare(
        {"event": "x", "userId": "u", "timestamp": "2020-01-01T00:00:00Z"},
        "track",
        source="web",
        received_at=received,
        config=config,
    )
    assert json.loads(single.lines[0])["timestamp"] == "2020-01-01T00:00:00Z"


# -- over HTTP -------------------------------------------------------------------------
@pytest.fixture
def collector(tmp_path):
    server = start_collector(tmp_path, "--cors-origin", "https://shop.example")
    yield server
    server.stop()


def test_bad_input_gets_a_clear_status_and_nothing_is_lost(collector, warehouse):
    url = collector.url
    ok = {"batch": [event(1), event(2)]}
    with httpx.Client(base_url=url, timeout=10) as http:
        # Keys: wrong, missing, malformed header without a body key.
        assert http.post("/v1/batch", json=ok, headers=basic("nope")).status_code == 401
        assert http.post("/v1/batch", json=ok).status_code == 401
        refused = http.post("/v1/batch", json=ok, headers={"Authorization": "Bearer x"})
        assert refused.status_code == 401 and "write key" in refused.json()["message"]
        # Bad JSON, a gzip bomb (10 kB that inflates to 20 MB), too many events.
        bad = http.post("/v1/batch", content=b'{"batch": [', headers=basic(WRITE_KEY))
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_json"
        bomb = gzip.compress(b"[" + b" " * 20_000_000 + b"]")
        assert len(bomb) < 30_000
        inflated = http.post(
            "/v1/batch",
            content=bomb,
            headers={**basic(WRITE_KEY), "Content-Encoding": "gzip"},
        )
        assert inflated.status_code == 400 and inflated.json()["code"] == "body_too_large"
        many = {"batch": [{"type": "track", "event": "e", "userId": "u"}] * 2501}
        too_many = http.post("/v1/batch", json=many, headers=basic(WRITE_KEY))
        assert too_many.status_code == 400 and "2,501" in too_many.json()["message"]
        # A valid batch, gzip'd, with one oversized event and one with a NUL character:
        # those two are refused (and recorded), the other two stored.
        mixed = {
            "batch": [
                event(3),
                event(4, properties={"blob": "x" * 40_000}),
                event(5, properties={"note": "a\x00b"}),
                event(6),
            ]
        }
        answer = http.post(
            "/v1/batch",
            content=gzip.compress(json.dumps(mixed).encode()),
            headers={**basic(WRITE_KEY), "Content-Encoding": "gzip"},
        )
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["accepted"] == 2
        assert [(r["index"], r["messageId"]) for r in body["refused"]] == [
            (1, "msg-4"),
            (2, "msg-5"),
        ]
        assert "32,768" in body["refused"][0]["reason"]
        assert "properties.note contains a NUL" in body["refused"][1]["reason"]
        # The good batch, with the key in the body instead (another source), twice.
        for _ in range(2):
            answer = http.post("/v1/batch", json={**ok, "writeKey": OTHER_KEY})
            assert answer.status_code == 200, answer.text
        metrics = http.get("/metrics").text
    assert 'trackhouse_collector_requests_total{status="401"' in metrics
    assert "trackhouse_collector_spool_depth_bytes " in metrics

    collector.stop()  # seals the open segment
    report = drain(collector.spool_dir, warehouse.settings)
    assert (report.accepted, report.rejected, report.duplicates) == (4, 2, 2)
    events = {e["message_id"]: e for e in warehouse.raw("events")}
    assert set(events) == {"msg-1", "msg-2", "msg-3", "msg-6"}
    assert {json.loads(e["payload"])["projectId"] for e in events.values()} == {"web", "backend"}
    rejected = warehouse.raw("rejected")
    assert {r["source"] for r in rejected} == {"collector"}
    assert sorted(json.loads(r["payload"])["messageId"] for r in rejected) == ["msg-4", "msg-5"]
    assert any("NUL" in r["reason"] for r in rejected)
    # The access log: one JSON line per request, never a key or a payload.
    log = collector.log.read_text()
    lines = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    assert {x["status"] for x in lines} >= {200, 400, 401}
    assert WRITE_KEY not in log and OTHER_KEY not in log and "signup" not in log


def test_single_calls_and_the_browser_format(collector, warehouse):
    with httpx.Client(base_url=collector.url, timeout=10) as http:
        for path, body in [
            ("/v1/identify", {"userId": "u1", "anonymousId": "a1", "traits": {"name": "U"}}),
            ("/v1/screen", {"userId": "u1", "name": "Home"}),
            ("/v1/alias", {"userId": "u1", "previousId": "a0"}),
        ]:
            assert http.post(path, json=body, headers=basic(WRITE_KEY)).status_code == 200
        # analytics.js: text/plain, writeKey in the body, from an allowed origin.
        origin = {"Origin": "https://shop.example"}
        preflight = http.options(
            "/v1/t",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
        sent = http.post(
            "/v1/t",
            content=json.dumps(
                {
                    "event": "purchase",
                    "anonymousId": "a1",
                    "writeKey": WRITE_KEY,
                    "properties": {"revenue": 10},
                    "messageId": "ajs-1",
                    "timestamp": "2026-03-01T10:00:00.000Z",
                    "sentAt": "2026-03-01T10:00:01.000Z",
                }
            ),
            headers={**origin, "Content-Type": "text/plain"},
        )
        assert sent.status_code == 200
        assert sent.headers["access-control-allow-origin"] == "https://shop.example"
        other = http.post(
            "/v1/t",
            content=json.dumps({"event": "x", "anonymousId": "a", "writeKey": WRITE_KEY}),
            headers={"Origin": "https://evil.example", "Content-Type": "text/plain"},
        )
        assert "access-control-allow-origin" not in other.headers
        settings = http.get(f"/v1/projects/{WRITE_KEY}/settings").json()
        assert settings["integrations"]["Segment.io"]["apiHost"] == f"127.0.0.1:{collector.port}/v1"
        assert http.get("/v1/projects/wrong/settings").status_code == 401
        assert http.post("/v1/nope", json={}, headers=basic(WRITE_KEY)).status_code == 404
    collector.stop()
    drain(collector.spool_dir, warehouse.settings)
    rows = warehouse.raw("events")
    assert {e["event_type"] for e in rows} == {"identify", "screen", "alias", "track"}
    # CORS only stops a browser from reading the answer; the event itself is stored.
    assert len(rows) == 5
    browser = {e["message_id"]: json.loads(e["payload"]) for e in rows}["ajs-1"]
    assert "writeKey" not in browser  # a secret, not data
    assert browser["originalTimestamp"] == "2026-03-01T10:00:00.000Z"


def test_full_spool_answers_429_with_retry_after(tmp_path, warehouse):
    server = start_collector(tmp_path, "--max-spool-bytes", "3000")
    try:
        statuses = []
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(20):
                answer = http.post(
                    "/v1/batch",
                    json={"batch": [event(f"{i}-{j}") for j in range(5)]},
                    headers=basic(WRITE_KEY),
                )
                statuses.append(answer.status_code)
                if answer.status_code == 429:
                    assert int(answer.headers["Retry-After"]) >= 1
                    assert answer.json()["code"] == "spool_full"
                    break
            assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
            server.stop()
            stored = drain(server.spool_dir, warehouse.settings).accepted
            assert stored == 5 * (len(statuses) - 1)  # the refused batch kept nothing
    finally:
        server.stop()


@pytest.mark.slow
def test_sigkill_while_a_client_sends_loses_no_acknowledged_event(tmp_path, warehouse):
    server = start_collector(tmp_path)
    acked: list[str] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            for n in range(400):
                if stop.is_set():
                    return
                ids = [f"w{worker}-b{n}-{j}" for j in range(20)]
                try:
                    answer = http.post(
                        "/v1/batch",
                        json={"batch": [event(i, messageId=i) for i in ids]},
                        headers=basic(WRITE_KEY),
                    )
                except httpx.HTTPError:
                    return  # the collector is gone: this batch was never acknowledged
                if answer.status_code == 200:
                    acked.extend(ids)

    senders = [threading.Thread(target=send, args=(w,)) for w in range(2)]
    for t in senders:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 400 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL, mid-stream
    stop.set()
    for t in senders:
        t.join(30)
    assert len(acked) >= 400
    # Restart on the same spool, one more batch, then drain.
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        after = http.post("/v1/batch", json={"batch": [event("after")]}, headers=basic(WRITE_KEY))
        assert after.status_code == 200
    server.stop()
    report = drain(server.spool_dir, warehouse.settings)
    landed = {e["message_id"] for e in warehouse.raw("events")}
    assert set(acked) | {"msg-after"} <= landed
    assert report.rejected == 0 or all(
        "incomplete last line" in r["reason"] for r in warehouse.raw("rejected")
    )


def test_cli_refuses_to_start_without_write_keys(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "trackhouse.collector", "serve", "--spool-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            k: v
            for k, v in __import__("os").environ.items()
            if not k.startswith("TRACKHOUSE_COLLECTOR")
        },
    )
    assert proc.returncode == 2 and "no write keys" in proc.stderr
    hashed = subprocess.run(
        [sys.executable, "-m", "trackhouse.collector", "hash-key", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert hashed.stdout.strip() == hash_write_key("abc")


def test_timestamps_near_now_are_corrected_for_skew(collector, warehouse):
    """A device whose clock is 2 hours fast: the stored time is the server's."""
    fast = datetime.now(UTC) + timedelta(hours=2)
    with httpx.Client(base_url=collector.url, timeout=10) as http:
        body = {
            "batch": [event("skew", timestamp=fast.isoformat())],
            "sentAt": fast.isoformat(),
        }
        assert http.post("/v1/batch", json=body, headers=basic(WRITE_KEY)).status_code == 200
    collector.stop()
    drain(collector.spool_dir, warehouse.settings)
    (stored,) = warehouse.raw("events")
    occurred = stored["occurred_at"]
    assert abs(occurred - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=5)


def test_two_workers_write_one_spool(tmp_path, warehouse):
    server = start_collector(tmp_path, "--workers", "2")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for n in range(20):
                batch = {"batch": [event(f"{n}-{j}") for j in range(10)]}
                answer = http.post("/v1/batch", json=batch, headers=basic(WRITE_KEY))
                assert answer.status_code == 200
    finally:
        server.stop()
    report = drain(server.spool_dir, warehouse.settings)
    assert (report.accepted, report.rejected) == (200, 0)
    assert warehouse.count("events") == 200
