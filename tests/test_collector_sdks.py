"""Real tracking SDKs (none written by us) send to the collector; after a drain and
`dbt build` the marts hold exactly what they sent.

- segment-analytics-python (`Client(write_key, host=...)`)
- rudder-sdk-python (`Client(write_key, host=...)`: the module-level `dataPlaneUrl`)
- @segment/analytics-node from npm (`new Analytics({writeKey, host})`), run by node

Each SDK plays the same story under its own ids: an old device aliased to the user,
a campaign visit (page with UTM + gclid), a login (identify), the account (group) and
a purchase with revenue (track).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from trackhouse.spool import drain

from collector_server import SDK_DIR, WRITE_KEY, npm_install, start_collector

NODE = shutil.which("node") or "/usr/bin/node"
CLIENTS = ("segment_py", "rudder_py", "node")

pytestmark = pytest.mark.slow


def story(p: str, base: datetime) -> list[dict[str, Any]]:
    """The calls one SDK makes, as (method, fields) in the Segment spec's names."""
    at = [(base + timedelta(minutes=i)).isoformat() for i in range(5)]
    return [
        {
            "method": "alias",
            "previousId": f"{p}-old-device",
            "userId": f"{p}-user",
            "timestamp": at[0],
        },
        {
            "method": "page",
            "anonymousId": f"{p}-anon",
            "name": "Landing",
            "timestamp": at[1],
            "properties": {
                "url": f"https://shop.example/landing?utm_source={p}&utm_medium=email"
                f"&utm_campaign=launch&gclid={p}-click",
                "referrer": "https://mail.example/",
            },
        },
        {
            "method": "identify",
            "userId": f"{p}-user",
            "anonymousId": f"{p}-anon",
            "timestamp": at[2],
            "traits": {"created_at": base.isoformat(), "account_id": f"{p}-acme"},
        },
        {
            "method": "group",
            "userId": f"{p}-user",
            "groupId": f"{p}-acme",
            "timestamp": at[3],
            "traits": {
                "name": f"Acme {p}",
                "subscription_start": (base - timedelta(days=10)).isoformat(),
            },
        },
        {
            "method": "track",
            "userId": f"{p}-user",
            "event": "purchase",
            "timestamp": at[4],
            "properties": {"revenue": 49.9, "currency": "EUR", "order": p},
        },
    ]


def send_python(client: Any, calls: list[dict[str, Any]]) -> None:
    """The same calls through a Python SDK (segment and rudder share the signature)."""
    for call in calls:
        c = dict(call)
        method = c.pop("method")
        ts = datetime.fromisoformat(c.pop("timestamp"))
        if method == "alias":
            client.alias(c["previousId"], c["userId"], timestamp=ts)
        elif method == "page":
            client.page(
                anonymous_id=c["anonymousId"],
                name=c["name"],
                properties=c["properties"],
                timestamp=ts,
            )
        elif method == "identify":
            client.identify(c["userId"], c["traits"], anonymous_id=c["anonymousId"], timestamp=ts)
        elif method == "group":
            client.group(c["userId"], c["groupId"], c["traits"], timestamp=ts)
        else:
            client.track(c["userId"], c["event"], c["properties"], timestamp=ts)
    client.flush()


def send_node(host: str, calls: list[dict[str, Any]]) -> None:
    params = [
        {"method": c["method"], "params": {k: v for k, v in c.items() if k != "method"}}
        for c in calls
    ]
    proc = subprocess.run(
        [NODE, str(SDK_DIR / "send_node.mjs"), host, WRITE_KEY, json.dumps(params)],
        cwd=SDK_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"node SDK failed:\n{proc.stdout}\n{proc.stderr}"
    assert json.loads(proc.stdout) == {"sent": len(calls)}


def test_real_sdks_land_in_the_marts(tmp_path, warehouse):
    from rudderstack.analytics.client import Client as RudderClient
    from segment.analytics.client import Client as SegmentClient

    npm_install()
    base = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    server = start_collector(tmp_path)
    errors: list[Any] = []
    try:
        segment = SegmentClient(
            WRITE_KEY,
            host=server.url,
            gzip=True,
            max_retries=2,
            on_error=lambda e, batch: errors.append(("segment", e)),
        )
        send_python(segment, story("segment_py", base))
        segment.shutdown()
        rudder = RudderClient(
            WRITE_KEY,
            host=server.url,
            max_retries=2,
            on_error=lambda e, batch: errors.append(("rudder", e)),
        )
        send_python(rudder, story("rudder_py", base))
        rudder.shutdown()
        send_node(server.url, story("node", base))
    finally:
        server.stop()
    assert errors == []
    report = drain(server.spool_dir, warehouse.settings)
    assert (report.accepted, report.rejected) == (15, 0), report.rejections
    libraries = sorted(
        json.loads(e["payload"])["context"]["library"]["name"] for e in warehouse.raw("events")
    )
    # (rudder-sdk-python, a fork, still names itself analytics-python)
    assert libraries == ["@segment/analytics-node"] * 5 + ["analytics-python"] * 10
    warehouse.build(
        "+conversion_attribution", "+identities", "+usage_subscription_periods", "+activity_hourly"
    )

    identities = {r["anonymous_id"]: r for r in warehouse.table("identities")}
    touchpoints = {r["stitched_id"]: r for r in warehouse.table("touchpoints")}
    conversions = {r["stitched_id"]: r for r in warehouse.table("conversions")}
    attribution = {
        (r["stitched_id"], r["attribution_model"]): r
        for r in warehouse.table("conversion_attribution")
    }
    accounts = {r["account_id"] for r in warehouse.table("usage_subscription_periods")}
    active = {r["user_id"] for r in warehouse.table("activity_hourly")}
    assert len(conversions) == len(touchpoints) == 3
    for p in CLIENTS:
        user = f"{p}-user"
        assert identities[f"{p}-anon"]["stitched_id"] == user
        assert identities[f"{p}-old-device"]["user_id"] == user
        touch = touchpoints[user]
        assert (touch["utm_source"], touch["utm_medium"], touch["utm_campaign"]) == (
            p,
            "email",
            "launch",
        )
        assert touch["gclid"] == f"{p}-click" and touch["referrer"] == "https://mail.example/"
        # Skew correction moves a time by the network delay only (loopback: milliseconds).
        sent_at = (base + timedelta(minutes=1)).replace(tzinfo=None)
        assert abs(touch["touched_at"] - sent_at) < timedelta(seconds=30)
        conversion = conversions[user]
        assert conversion["event"] == "purchase" and conversion["is_valid"] is True
        assert (conversion["value"], conversion["currency"]) == (Decimal("49.90"), "EUR")
        assert json.loads(conversion["custom_data_json"]) == {"order": p}
        for model in ("first_touch", "last_touch"):
            credited = attribution[user, model]
            assert credited["touchpoint_id"] == touch["touchpoint_id"]
            assert credited["gclid"] == f"{p}-click"
        assert f"{p}-acme" in accounts
        assert user in active
