"""The browser SDK (@segment/analytics-next from npm, served by `serve --demo`) in headless
Chromium driven by Playwright: a campaign visit, a login and a purchase give a touchpoint,
a stitched identity and an attributed conversion."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from test_collector_sdks import npm_install

from trackhouse.spool import drain

from collector_server import start_collector

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def events_received(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        int(m)
        for m in re.findall(r"^trackhouse_collector_events_received_total\{.*\} (\d+)$", text, re.M)
    )


# One target is enough here: the SDK tests cover both; this one is about the browser.
@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_browser_visit_login_and_purchase_are_attributed(tmp_path, warehouse):
    from playwright.sync_api import sync_playwright

    npm_install()
    server = start_collector(tmp_path, "--demo")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(
                f"{server.url}/?utm_source=newsletter&utm_medium=email&utm_campaign=launch"
                "&gclid=browser-click"
            )
            sent = "document.getElementById('log').dataset.sent >= {}"
            page.wait_for_function(sent.format(1), timeout=30_000)
            page.fill("#user-id", "browser-user")
            page.click("#login")
            page.wait_for_function(sent.format(2), timeout=30_000)
            page.click("#purchase")
            page.wait_for_function(sent.format(3), timeout=30_000)
            deadline = time.monotonic() + 30
            while events_received(server.url) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            anonymous_id = page.evaluate("window.analytics.user().anonymousId()")
            browser.close()
        assert failed == []  # nothing went to a vendor CDN or API
    finally:
        server.stop()
    report = drain(server.spool_dir, warehouse.settings)
    assert (report.accepted, report.rejected) == (3, 0), report.rejections
    warehouse.build("+conversion_attribution", "+identities")

    (touchpoint,) = warehouse.table("touchpoints")
    assert (touchpoint["utm_source"], touchpoint["utm_campaign"], touchpoint["gclid"]) == (
        "newsletter",
        "launch",
        "browser-click",
    )
    assert touchpoint["stitched_id"] == "browser-user"  # the visit was anonymous
    identity = {r["anonymous_id"]: r for r in warehouse.table("identities")}[anonymous_id]
    assert identity["user_id"] == "browser-user"
    (conversion,) = warehouse.table("conversions")
    assert conversion["event"] == "purchase" and str(conversion["value"]) == "49.90"
    for row in warehouse.table("conversion_attribution"):
        assert row["touchpoint_id"] == touchpoint["touchpoint_id"], row["attribution_model"]
        assert row["utm_source"] == "newsletter"
