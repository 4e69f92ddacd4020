"""The WSGI and ASGI middlewares against real servers, with a browser-like cookie jar.

A WSGI app served by wsgiref and a Starlette app served by uvicorn, each
wrapped by trackhouse; a visitor lands with UTM parameters, browses, signs up
(a conversion recorded by the app with the cookie's anonymous id), logs in;
then dbt builds the marts and the conversion is credited to the landing.
"""

from __future__ import annotations

import csv
import http.cookiejar
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from trackhouse import Tracker
from trackhouse.middleware import (
    DEFAULT_BOT_PATTERNS,
    TrackhouseASGIMiddleware,
    TrackhouseWSGIMiddleware,
    has_tracking_values,
)
from trackhouse.spool import drain

ROOT = Path(__file__).resolve().parents[1]
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
LANDING = "/landing?utm_source=google&utm_medium=cpc&utm_campaign=spring%20sale&gclid=G-1"


def session_user(cookie_header: str) -> str | None:
    """The test apps' 'session': a cookie `session=<user id>` set at login."""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "session" and value:
            return value
    return None


# -- a plain WSGI app (what Flask's app.wsgi_app or Django's WSGIHandler is) ----
def make_wsgi_app(tracker: Tracker) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        user = session_user(environ.get("HTTP_COOKIE", ""))
        headers = [("Content-Type", "text/plain")]
        if path == "/missing":
            start_response("404 Not Found", headers)
            return [b"not found"]
        if path == "/signup":
            # The app records the conversion with the visitor's anonymous id.
            tracker.record_conversion(
                "signup",
                anonymous_id=environ["trackhouse.anonymous_id"],
                conversion_id="wsgi-signup",
            )
        if path == "/login":
            user = "wsgi-user"
            headers.append(("Set-Cookie", f"session={user}; Path=/"))
        if user:
            # Flask / Django style: the app tells trackhouse who is logged in.
            environ["trackhouse.user_id"] = user
        start_response("200 OK", headers)
        return [f"anonymous id {environ['trackhouse.anonymous_id']}".encode()]

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, server_class=WSGIServer, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- a Starlette app served by uvicorn (FastAPI is Starlette underneath) -------
def make_asgi_app(tracker: Tracker) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"anonymous id {request.state.trackhouse_anonymous_id}")

    async def missing(request: Request) -> PlainTextResponse:
        return PlainTextResponse("not found", status_code=404)

    async def signup(request: Request) -> PlainTextResponse:
        tracker.record_conversion(
            "signup",
            anonymous_id=request.state.trackhouse_anonymous_id,
            conversion_id="asgi-signup",
        )
        return PlainTextResponse("welcome")

    async def login(request: Request) -> PlainTextResponse:
        response = PlainTextResponse("logged in")
        response.set_cookie("session", "asgi-user")
        # The user id is only in the response here; the next requests carry it.
        return response

    app = Starlette(
        routes=[
            Route("/landing", page),
            Route("/about", page),
            Route("/admin/orders", page),
            Route("/missing", missing),
            Route("/signup", signup, methods=["GET", "POST"]),
            Route("/login", login, methods=["POST"]),
        ]
    )
    app.add_middleware(
        TrackhouseASGIMiddleware,
        tracker=tracker,
        # The app says who is logged in: here from its session cookie.
        get_user_id=lambda scope: session_user(
            "; ".join(v.decode() for k, v in scope["headers"] if k == b"cookie")
        ),
    )
    return app


@contextmanager
def asgi_server(app: Any) -> Iterator[str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# -- a browser ------------------------------------------------------------------
class Browser:
    def __init__(
        self, base: str, user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/126"
    ) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.user_agent = user_agent

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, list[str]]]:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=b"" if method == "POST" else None,
            headers={"User-Agent": self.user_agent, "Referer": "https://www.google.com/"},
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                status, headers = response.status, response.headers
        except urllib.error.HTTPError as error:
            status, headers = error.code, error.headers
        return status, {"set-cookie": headers.get_all("Set-Cookie") or []}

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


def visit_like_a_marketer_would(base: str) -> dict[str, Any]:
    """Land with UTM, browse, hit a 404, the admin, sign up, log in, come back."""
    seen: dict[str, Any] = {}
    visitor = Browser(base)
    status, headers = visitor.get(LANDING)
    assert status == 200
    seen["landing_cookie_header"] = next(h for h in headers["set-cookie"] if "_th_aid=" in h)
    anonymous_id = visitor.cookie("_th_aid")
    assert anonymous_id
    seen["anonymous_id"] = anonymous_id
    # The same id on every later request (cookie sent back, refreshed).
    assert visitor.get("/about")[0] == 200
    assert visitor.get("/missing?utm_source=newsletter")[0] == 404  # not 2xx: no touchpoint
    assert visitor.get("/admin/orders?utm_source=admin")[0] == 200  # excluded path
    assert visitor.get("/signup", method="POST")[0] == 200
    assert visitor.get("/login", method="POST")[0] == 200
    assert visitor.get("/about")[0] == 200
    assert visitor.get("/about")[0] == 200
    assert visitor.cookie("_th_aid") == anonymous_id

    # A crawler with tracking parameters: no touchpoint, no cookie.
    crawler = Browser(base, user_agent=GOOGLEBOT)
    assert crawler.get("/landing?utm_source=google")[0] == 200
    assert crawler.cookie("_th_aid") is None
    # A visitor without tracking parameters gets no cookie either.
    browser = Browser(base)
    assert browser.get("/about")[0] == 200
    assert browser.cookie("_th_aid") is None
    return seen


def test_wsgi_and_asgi_middlewares_end_to_end(warehouse):
    with Tracker(warehouse.settings, flush_interval=0) as tracker:
        wsgi_app = TrackhouseWSGIMiddleware(make_wsgi_app(tracker), tracker=tracker)
        with wsgi_server(wsgi_app) as base:
            wsgi = visit_like_a_marketer_would(base)
        with asgi_server(make_asgi_app(tracker)) as base:
            asgi = visit_like_a_marketer_would(base)

    for seen in (wsgi, asgi):
        cookie = seen["landing_cookie_header"]
        assert "Max-Age=7776000" in cookie  # 90 days
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http

    warehouse.build("+conversion_attribution", "+identities")
    touchpoints = warehouse.table("touchpoints", "touchpoint_id")
    identities = {r["anonymous_id"]: r for r in warehouse.table("identities")}
    attribution = {
        r["conversion_id"]: r
        for r in warehouse.table("conversion_attribution")
        if r["attribution_model"] == "last_touch"
    }
    for seen, user, conversion in (
        (wsgi, "wsgi-user", "wsgi-signup"),
        (asgi, "asgi-user", "asgi-signup"),
    ):
        anonymous_id = seen["anonymous_id"]
        # Exactly one touchpoint: the landing (not the 404, the admin or the crawler).
        (landing,) = [t for t in touchpoints if t["anonymous_id"] == anonymous_id]
        assert (landing["utm_source"], landing["utm_campaign"], landing["gclid"]) == (
            "google",
            "spring sale",
            "G-1",
        )
        assert landing["url"].endswith(LANDING)
        assert landing["referrer"] == "https://www.google.com/"
        # Logged in: the device is linked to the user, retroactively.
        assert identities[anonymous_id]["user_id"] == user
        assert landing["stitched_id"] == user
        # The anonymous sign-up is credited to the landing.
        assert attribution[conversion]["stitched_id"] == user
        assert attribution[conversion]["touchpoint_id"] == landing["touchpoint_id"]
    # The crawler's page view was never written, nor the 404 or the admin page.
    raw_urls = [r["url"] for r in warehouse.raw("touchpoints")]
    assert len(raw_urls) == 2, raw_urls
    # identify once per device and user; souvenirs-style activity for logged-in requests.
    links = [(r["anonymous_id"], r["user_id"]) for r in warehouse.raw("identity_links")]
    assert sorted(links) == sorted(
        [(wsgi["anonymous_id"], "wsgi-user"), (asgi["anonymous_id"], "asgi-user")]
    )
    active = {r["user_id"] for r in warehouse.raw("activity")}
    assert {"wsgi-user", "asgi-user"} <= active


def call_wsgi(app: Any, **environ: Any) -> tuple[str, list[tuple[str, str]]]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured.update(status=status, headers=headers)

    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "shop.example",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "http",
    }
    list(app({**base, **environ}, start_response))
    return captured["status"], captured["headers"]


class RecordingTracker:
    """Stands in for a Tracker where only the calls matter (no database)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return record


def ok_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_cookie_options_https_and_existing_ids():
    tracker = RecordingTracker()
    app = TrackhouseWSGIMiddleware(
        ok_app, tracker=tracker, cookie_name="aid", cookie_domain="shop.example"
    )
    _, headers = call_wsgi(
        app,
        QUERY_STRING="utm_source=google",
        HTTP_HOST="shop.example",
        **{"wsgi.url_scheme": "https"},
    )
    (cookie,) = [v for k, v in headers if k == "Set-Cookie"]
    assert cookie.startswith("aid=") and "; Secure" in cookie and "Domain=shop.example" in cookie
    ((name, args, _kwargs),) = tracker.calls
    assert name == "record_touchpoint"
    assert args[1] == "https://shop.example/?utm_source=google"
    # A known id is kept and refreshed; a forged one is replaced.
    _, headers = call_wsgi(app, HTTP_COOKIE="x=1; aid=abcdef0123456789")
    assert next(v for k, v in headers if k == "Set-Cookie").startswith("aid=abcdef0123456789;")
    _, headers = call_wsgi(app, HTTP_COOKIE='aid="<script>"', QUERY_STRING="gclid=1")
    assert "<script>" not in next(v for k, v in headers if k == "Set-Cookie")
    # Blank or unknown parameters are not tracking; names are case-sensitive.
    assert not has_tracking_values("utm_source=&UTM_SOURCE=x&ref=y")
    assert has_tracking_values("a=1&li_fat_id=abc")


def test_tracking_errors_never_break_the_app():
    class BrokenTracker:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("database down")

    app = TrackhouseWSGIMiddleware(ok_app, tracker=BrokenTracker())
    status, _ = call_wsgi(app, QUERY_STRING="utm_source=google")
    assert status == "200 OK"


def test_bot_patterns_match_the_dbt_seed():
    with open(ROOT / "seeds" / "bot_user_agents.csv", newline="") as f:
        seed = [row["pattern"] for row in csv.DictReader(f)]
    assert tuple(seed) == DEFAULT_BOT_PATTERNS
    assert len(seed) == 30


@pytest.mark.parametrize("path", ["/admin/", "/api/v1/x"])
def test_excluded_paths_are_not_tracked(path):
    tracker = RecordingTracker()
    app = TrackhouseWSGIMiddleware(ok_app, tracker=tracker)
    _, headers = call_wsgi(app, PATH_INFO=path, QUERY_STRING="utm_source=google")
    assert tracker.calls == [] and not [v for k, v in headers if k == "Set-Cookie"]


def test_requests_spool_and_a_full_spool_never_breaks_a_response(warehouse, caplog):
    """A request appends to the spool and returns without the warehouse; when the
    spool is full, the touchpoint is not recorded, the response is still served
    and the log says why."""
    with Tracker(
        warehouse.settings,
        spool_dir=warehouse.tmp / "spool",
        drain="off",
        flush_interval=0,
        max_spool_bytes=3_000,
    ) as tracker:
        app = TrackhouseWSGIMiddleware(ok_app, tracker=tracker)
        statuses = [
            call_wsgi(app, QUERY_STRING=f"utm_source=s{i}&utm_content={'x' * 200}")[0]
            for i in range(20)
        ]
        assert statuses == ["200 OK"] * 20
        spooled = tracker.spool.depth_bytes()
    assert 0 < spooled <= 3_000
    assert "NOT recorded" in caplog.text
    report = drain(warehouse.tmp / "spool", warehouse.settings)
    assert 0 < report.accepted < 20  # what fitted in the spool, and only that
    assert warehouse.count("touchpoints") == report.accepted
