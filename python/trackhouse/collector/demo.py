"""`trackhouse serve --demo`: a page with the real browser SDK, served by the collector.

The page loads `@segment/analytics-next` from its npm package (the UMD bundle in
node_modules, with its lazily loaded chunks), points it at this collector through
the settings endpoint (`cdnURL` = the collector), and records a page view on load
(a touchpoint when the URL has UTM parameters or a click id), a login (`identify`)
and a purchase (`track`). The demo source's write key is generated at start-up;
a browser write key is public anyway (it is in every page that sends events).
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import ConfigError
from .config import CollectorConfig

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>trackhouse collector demo</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; }
  button, input { font: inherit; padding: .3rem .6rem; }
  #log { background: #f4f4f4; padding: .6rem; white-space: pre-wrap; min-height: 4rem; }
</style>
</head>
<body>
<h1>trackhouse collector demo</h1>
<p>This page sends events with Segment's browser SDK (<code>@segment/analytics-next</code>,
served from its npm package) to this collector, which writes them to the spool.
Drain the spool and run <code>dbt build</code> to see them in the marts.</p>
<ol>
  <li>Arrive from a campaign:
    <a id="campaign-link"
       href="/?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=launch&amp;gclid=demo"
      >/?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=launch&amp;gclid=demo</a>
    (every visit records a page view; one with tracking parameters is a touchpoint).</li>
  <li>Log in: <input id="user-id" value="demo-user-1" aria-label="user id">
    <button id="login">Log in (identify)</button></li>
  <li>Buy: <button id="purchase">Buy for 49.90 EUR (track "purchase")</button></li>
</ol>
<p>Sent so far:</p>
<div id="log" data-sent="0"></div>
<script>
  // analytics-next loads its chunks from `<cdn>/analytics-next/bundles/`: here, this collector.
  window.analytics = { _cdn: window.location.origin };
</script>
<script src="/analytics-next/bundles/index.js"></script>
<script>
  const WRITE_KEY = __WRITE_KEY__;
  const log = document.getElementById("log");
  function note(text) {
    log.textContent += text + "\\n";
    log.dataset.sent = String(Number(log.dataset.sent) + 1);
  }
  window.demoReady = AnalyticsNext.AnalyticsBrowser.load(
    { writeKey: WRITE_KEY, cdnURL: window.location.origin },
    { integrations: { "Segment.io": { deliveryStrategy: { strategy: "standard" } } } }
  ).then(async ([analytics]) => {
    window.analytics = analytics;
    const ctx = await analytics.page();
    note("page " + ctx.event.context.page.url);
    document.getElementById("login").onclick = async () => {
      const userId = document.getElementById("user-id").value;
      const c = await analytics.identify(userId, { created_at: new Date().toISOString() });
      note("identify " + c.event.userId + " (anonymousId " + c.event.anonymousId + ")");
    };
    document.getElementById("purchase").onclick = async () => {
      const c = await analytics.track("purchase", { revenue: 49.90, currency: "EUR" });
      note("track purchase " + c.event.messageId);
    };
    return analytics;
  });
</script>
</body>
</html>
"""


def analytics_next_bundles(node_modules: Path) -> Path:
    return node_modules / "@segment" / "analytics-next" / "dist" / "umd"


def demo_routes(config: CollectorConfig) -> list[BaseRoute]:
    from .app import node_modules_dir

    modules = node_modules_dir(config)
    if modules is None:
        raise ConfigError(
            "--demo needs @segment/analytics-next from npm: run `npm install --prefix tests/sdk` "
            "(or point --node-modules / $TRACKHOUSE_NODE_MODULES at a node_modules that has it)"
        )
    if not config.demo_write_key:
        raise ConfigError("the demo page needs config.demo_write_key; use with_demo_key(config)")
    page = _PAGE.replace("__WRITE_KEY__", json.dumps(config.demo_write_key).replace("</", "<\\/"))

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    return [
        Route("/", index, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount(
            "/analytics-next/bundles",
            app=StaticFiles(directory=analytics_next_bundles(modules)),
        ),
    ]
