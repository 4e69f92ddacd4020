"""WSGI and ASGI middlewares: what django-attribution's two middlewares and the
souvenirs middleware do, for any framework (Django, Flask, FastAPI, Starlette...).

Per request:

- **anonymous id cookie** (default ``_th_aid``): read when present; a visitor
  arriving with tracking parameters gets a new one (a UUID). The cookie is
  (re)set on every response of a visitor who has one: 90 days max age,
  HttpOnly, SameSite=Lax, Secure on https. The id is available to the app as
  ``environ["trackhouse.anonymous_id"]`` (WSGI) or ``scope["trackhouse.anonymous_id"]``
  and ``request.state.trackhouse_anonymous_id`` (ASGI) — pass it to
  ``record_conversion(anonymous_id=...)``.
- **touchpoint**: recorded only for a 2xx response whose URL carries at least
  one of the 12 tracking parameters with a value, unless the path starts with
  an excluded prefix (default ``/admin/``, ``/api/``) or the user agent is a
  bot's (the 30 patterns of the dbt seed ``bot_user_agents``). The warehouse
  applies the same rules again (``filter_bots``, ``utm_excluded_urls``), so
  changing them there re-applies to history.
- **login**: ``get_user_id(environ_or_scope)`` is called after the app has
  handled the request (so the app may put the id there, e.g.
  ``request.environ["trackhouse.user_id"] = user.pk``); when it returns a user
  id for a visitor with an anonymous id, ``identify(anonymous_id, user_id)``
  links them (once per pair and process; the warehouse keeps the first user of
  a device), and ``record_activity(user_id)`` records souvenirs-style activity.

Nothing here talks to the database during a request: each record is one
line appended (and fsync'd) to the process's spool segment before the response
goes out, and a drain loads the spool later (see `trackhouse.ingest`). A
failure in tracking (including a full spool) is logged and never breaks a
response. Under gunicorn/uvicorn with several workers, each worker process
appends to its own segment file (fork-safe, also with ``--preload``); one
spool directory serves them all, and any number of drains may run at once.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from email.utils import formatdate
from time import time
from typing import Any
from urllib.parse import parse_qsl, quote

from .ingest import Tracker, get_tracker
from .parsing import TRACKING_PARAMETERS

log = logging.getLogger("trackhouse.middleware")

DEFAULT_COOKIE_NAME = "_th_aid"
DEFAULT_COOKIE_MAX_AGE = 60 * 60 * 24 * 90  # 90 days
DEFAULT_EXCLUDED_PATHS = ("/admin/", "/api/")
# django-attribution's DEFAULT_BOT_PATTERNS; the same list is the dbt seed
# seeds/bot_user_agents.csv (a test keeps them equal).
DEFAULT_BOT_PATTERNS = (
    "bot",
    "crawler",
    "spider",
    "scraper",
    "robot",
    "facebookexternalhit",
    "facebookcatalog",
    "facebookbot",
    "twitterbot",
    "linkedinbot",
    "slackbot",
    "whatsapp",
    "telegrambot",
    "skypeuripreview",
    "googlebot",
    "bingbot",
    "yandexbot",
    "duckduckbot",
    "baiduspider",
    "sogou",
    "ahrefsbot",
    "semrushbot",
    "mj12bot",
    "dotbot",
    "screamingfrogseospider",
    "siteauditbot",
    "applebot",
    "pinterestbot",
    "redditbot",
    "ia_archiver",
)
ANONYMOUS_ID_KEY = "trackhouse.anonymous_id"
USER_ID_KEY = "trackhouse.user_id"
_TRACKING = frozenset(TRACKING_PARAMETERS)
# Cookie values we accept as ours: anything else is replaced, not echoed.
_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_IDENTIFIED_CACHE_SIZE = 50_000

GetUserId = Callable[[Mapping[str, Any]], "str | int | None"]


def default_get_user_id(environ_or_scope: Mapping[str, Any]) -> str | None:
    """The user id the app left in the WSGI environ / ASGI scope under
    ``"trackhouse.user_id"`` (ASGI: also ``request.state.trackhouse_user_id``)."""
    value = environ_or_scope.get(USER_ID_KEY)
    if value is None:
        state = environ_or_scope.get("state")
        if isinstance(state, Mapping):
            value = state.get("trackhouse_user_id")
    return None if value is None or value == "" else str(value)


def has_tracking_values(query_string: str) -> bool:
    """True when the query string gives one of the 12 tracking parameters a
    non-blank value (names are case-sensitive, as in the warehouse)."""
    if not query_string:
        return False
    return any(
        name in _TRACKING and value.strip()
        for name, value in parse_qsl(query_string, keep_blank_values=True)
    )


def _cookie_value(cookie_header: str, name: str) -> str | None:
    """The value of one cookie, tolerant of malformed headers (unlike SimpleCookie)."""
    for part in cookie_header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


@dataclass
class Visit:
    """What the middleware knows about one request."""

    path: str
    url: str
    query_string: str
    user_agent: str | None
    referrer: str | None
    is_https: bool
    anonymous_id: str | None = None
    is_new_id: bool = False
    tracks: bool = False
    done: bool = False
    cookies: list[str] = field(default_factory=list)


class TrackingCore:
    """The framework-independent part shared by the WSGI and ASGI middlewares."""

    def __init__(
        self,
        *,
        tracker: Tracker | None = None,
        get_user_id: GetUserId | None = None,
        cookie_name: str = DEFAULT_COOKIE_NAME,
        cookie_max_age: int = DEFAULT_COOKIE_MAX_AGE,
        cookie_secure: bool | None = None,
        cookie_domain: str | None = None,
        cookie_path: str = "/",
        cookie_samesite: str = "Lax",
        excluded_paths: Iterable[str] = DEFAULT_EXCLUDED_PATHS,
        bot_patterns: Iterable[str] = DEFAULT_BOT_PATTERNS,
        filter_bots: bool = True,
        record_activity: bool = True,
        identify_users: bool = True,
    ) -> None:
        self._tracker = tracker
        self.get_user_id = get_user_id or default_get_user_id
        self.cookie_name = cookie_name
        self.cookie_max_age = int(cookie_max_age)
        self.cookie_secure = cookie_secure
        self.cookie_domain = cookie_domain
        self.cookie_path = cookie_path
        self.cookie_samesite = cookie_samesite
        self.excluded_paths = tuple(p for p in excluded_paths if p)
        self.bot_patterns = tuple(p.lower() for p in bot_patterns if p)
        self.filter_bots = filter_bots
        self.record_activity = record_activity
        self.identify_users = identify_users
        self._identified: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def tracker(self) -> Tracker:
        """The Tracker given, else the process-wide one (created on first use)."""
        return self._tracker or get_tracker()

    def is_bot(self, user_agent: str | None) -> bool:
        if not user_agent:
            return False
        agent = user_agent.lower()
        return any(pattern in agent for pattern in self.bot_patterns)

    def is_excluded(self, path: str) -> bool:
        return any(path.startswith(prefix) for prefix in self.excluded_paths)

    def begin(self, visit: Visit, cookie_header: str) -> Visit:
        """Before the app runs: the visitor's anonymous id, new when it brings tracking."""
        try:
            existing = _cookie_value(cookie_header, self.cookie_name) if cookie_header else None
            visit.tracks = (
                has_tracking_values(visit.query_string)
                and not self.is_excluded(visit.path)
                and not (self.filter_bots and self.is_bot(visit.user_agent))
            )
            if existing and _VALID_ID.match(existing):
                visit.anonymous_id = existing
            elif visit.tracks:
                visit.anonymous_id = uuid.uuid4().hex
                visit.is_new_id = True
        except Exception:  # tracking must never break the app
            log.exception("trackhouse middleware: could not read the request")
        return visit

    def finish(self, visit: Visit, status: int, environ_or_scope: Mapping[str, Any]) -> list[str]:
        """After the app answered: record, identify, and the Set-Cookie values."""
        if visit.done:
            return visit.cookies
        visit.done = True
        try:
            user_id = self.get_user_id(environ_or_scope)
            user_id = None if user_id is None or user_id == "" else str(user_id)
            if visit.tracks and visit.anonymous_id and 200 <= status < 300:
                self.tracker.record_touchpoint(
                    visit.anonymous_id,
                    visit.url,
                    user_id=user_id,
                    referrer=visit.referrer,
                    user_agent=visit.user_agent,
                )
            if user_id is not None:
                if (
                    self.identify_users
                    and visit.anonymous_id
                    and self._first_time(visit.anonymous_id, user_id)
                ):
                    self.tracker.identify(visit.anonymous_id, user_id)
                if self.record_activity:
                    self.tracker.record_activity(user_id)
            if visit.anonymous_id:
                visit.cookies = [self.cookie(visit.anonymous_id, visit.is_https)]
        except Exception:
            log.exception("trackhouse middleware: could not record this request")
        return visit.cookies

    def _first_time(self, anonymous_id: str, user_id: str) -> bool:
        key = (anonymous_id, user_id)
        with self._lock:
            if key in self._identified:
                self._identified.move_to_end(key)
                return False
            self._identified[key] = None
            if len(self._identified) > _IDENTIFIED_CACHE_SIZE:
                self._identified.popitem(last=False)
            return True

    def cookie(self, anonymous_id: str, is_https: bool) -> str:
        """The Set-Cookie header value that (re)sets the anonymous id."""
        parts = [
            f"{self.cookie_name}={anonymous_id}",
            f"Max-Age={self.cookie_max_age}",
            f"Expires={formatdate(time() + self.cookie_max_age, usegmt=True)}",
            f"Path={self.cookie_path}",
        ]
        if self.cookie_domain:
            parts.append(f"Domain={self.cookie_domain}")
        secure = is_https if self.cookie_secure is None else self.cookie_secure
        if secure:
            parts.append("Secure")
        parts.append("HttpOnly")
        if self.cookie_samesite:
            parts.append(f"SameSite={self.cookie_samesite}")
        return "; ".join(parts)


# -- WSGI --------------------------------------------------------------------
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _wsgi_visit(environ: Mapping[str, Any]) -> Visit:
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    host = environ.get("HTTP_HOST") or (
        f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    )
    # PATH_INFO is latin-1-decoded bytes (PEP 3333); quote it back as sent.
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    path_bytes = path.encode("latin-1", "replace")
    quoted = quote(path_bytes, safe="/;=,~!$&'()*+:@%-._")
    query = str(environ.get("QUERY_STRING", ""))
    return Visit(
        path=path_bytes.decode("utf-8", "replace") or "/",
        url=f"{scheme}://{host}{quoted or '/'}" + (f"?{query}" if query else ""),
        query_string=query,
        user_agent=environ.get("HTTP_USER_AGENT"),
        referrer=environ.get("HTTP_REFERER"),
        is_https=scheme == "https",
    )


class TrackhouseWSGIMiddleware:
    """Wrap any WSGI app: ``app.wsgi_app = TrackhouseWSGIMiddleware(app.wsgi_app)``
    (Flask) or ``application = TrackhouseWSGIMiddleware(get_wsgi_application())``
    (Django). Options: see `TrackingCore`."""

    def __init__(self, app: WSGIApp, **options: Any) -> None:
        self.app = app
        self.core = TrackingCore(**options)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        visit = self.core.begin(_wsgi_visit(environ), str(environ.get("HTTP_COOKIE", "")))
        environ[ANONYMOUS_ID_KEY] = visit.anonymous_id

        def tracked_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            try:
                code = int(status.split(" ", 1)[0])
            except ValueError:
                code = 0
            cookies = self.core.finish(visit, code, environ)
            headers = [*headers, *(("Set-Cookie", c) for c in cookies)]
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, tracked_start_response)


# -- ASGI --------------------------------------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _headers(scope: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for name, value in scope.get("headers") or ():
        yield name.decode("latin-1").lower(), value.decode("latin-1")


def _asgi_visit(scope: Mapping[str, Any]) -> tuple[Visit, str]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in _headers(scope):
        if name == "cookie":
            cookies.append(value)
        else:
            headers.setdefault(name, value)
    scheme = str(scope.get("scheme", "http"))
    server = scope.get("server") or ("localhost", None)
    host = headers.get("host") or (f"{server[0]}:{server[1]}" if server[1] else str(server[0]))
    raw_path = scope.get("raw_path")
    path = str(scope.get("root_path", "")) + str(scope.get("path", "/"))
    quoted = (
        raw_path.decode("latin-1")
        if isinstance(raw_path, bytes) and raw_path
        else quote(path, safe="/;=,~!$&'()*+:@%-._")
    )
    query = (scope.get("query_string") or b"").decode("latin-1")
    visit = Visit(
        path=path or "/",
        url=f"{scheme}://{host}{quoted or '/'}" + (f"?{query}" if query else ""),
        query_string=query,
        user_agent=headers.get("user-agent"),
        referrer=headers.get("referer"),
        is_https=scheme in ("https", "wss"),
    )
    return visit, "; ".join(cookies)


class TrackhouseASGIMiddleware:
    """Wrap any ASGI app: ``app.add_middleware(TrackhouseASGIMiddleware, ...)``
    (Starlette / FastAPI) or ``application = TrackhouseASGIMiddleware(get_asgi_application())``
    (Django). Options: see `TrackingCore`. Only HTTP requests are tracked."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.core = TrackingCore(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        visit, cookie_header = _asgi_visit(scope)
        self.core.begin(visit, cookie_header)
        scope[ANONYMOUS_ID_KEY] = visit.anonymous_id
        state = scope.setdefault("state", {})
        if isinstance(state, MutableMapping):
            state["trackhouse_anonymous_id"] = visit.anonymous_id

        async def tracked_send(message: Message) -> None:
            if message.get("type") == "http.response.start":
                cookies = self.core.finish(visit, int(message.get("status", 0)), scope)
                if cookies:
                    message = dict(message)
                    message["headers"] = [
                        *(message.get("headers") or ()),
                        *((b"set-cookie", c.encode("latin-1")) for c in cookies),
                    ]
            await send(message)

        await self.app(scope, receive, tracked_send)
