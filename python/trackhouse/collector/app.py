"""The collector's ASGI app: the Segment HTTP Tracking API in front of the spool.

A request is answered 200 only after its messages are in the spool and fsync'd,
so a collector killed right after answering loses nothing; the drain loads the
spool into the warehouse with the loader of `trackhouse load` (the `messageId`
de-duplicates a client's retries). When the spool is over its bound the answer is
429 with Retry-After: the collector never queues in memory.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TrackhouseError
from .config import ENV_RUNTIME, CollectorConfig, with_demo_key
from .messages import (
    BATCH_ENDPOINTS,
    ENDPOINT_TYPES,
    Prepared,
    RequestRefused,
    inflate,
    parse_json,
    prepare,
)
from .metrics import Metrics

access_logger = logging.getLogger("trackhouse.collector.access")
_LOGGED_STATE = ("source", "bytes", "events", "refused", "code")
_SETTINGS_PATH = re.compile(r"^(/v1/projects/)[^/]+(/settings)$")


# How often a worker seals its spool segment when idle, so a drain sees every event
# (a segment also seals itself on the first append after spool.seal_after seconds).
SEAL_INTERVAL = 1.0


class SpoolLike(Protocol):
    def append(self, messages: list[Any]) -> int: ...
    def append_rejected(
        self, payload: str, reason: str, received_at: datetime | None = None
    ) -> None: ...
    def depth_bytes(self) -> int: ...
    def seal_if_older(self, seconds: float | None = None) -> bool: ...
    def close(self) -> None: ...


def store(spool: SpoolLike, prepared: Prepared, received_at: datetime) -> None:
    """Refused messages (for the rejected table) first, then the accepted ones; each
    write is fsync'd before this returns."""
    naive = received_at.astimezone(UTC).replace(tzinfo=None)
    for refusal in prepared.refusals:
        spool.append_rejected(refusal.payload, refusal.reason, naive)
    if prepared.lines:
        spool.append(prepared.lines)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def basic_auth_key(header: str | None) -> str | None:
    """The write key of `Authorization: Basic base64(key:)`, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestRefused(
            400,
            "body_too_large",
            f"the body is {int(declared):,} bytes; at most {limit:,} per request "
            "(Segment's batch limit) — send smaller batches",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRefused(
                400,
                "body_too_large",
                f"the body is over {limit:,} bytes (Segment's batch limit); send smaller batches",
            )
        chunks.append(chunk)
    return b"".join(chunks)


class AccessLog:
    """One JSON line per request on the `trackhouse.collector.access` logger: method,
    path (a write key in it redacted), status, sizes, counts, source, duration.
    Never a payload or a key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            state = scope.get("state", {})
            client = scope.get("client")
            record = {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "method": scope["method"],
                "path": _SETTINGS_PATH.sub(r"\1<key>\2", scope["path"]),
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "client": client[0] if client else None,
                **{k: state[k] for k in _LOGGED_STATE if k in state},
            }
            access_logger.info(json.dumps(record))


class Collector:
    """The request handlers, bound to one configuration, spool and metrics."""

    def __init__(self, config: CollectorConfig, spool: SpoolLike | None) -> None:
        self.config = config
        self._spool = spool
        self.metrics = Metrics(self.spool_depth)

    @property
    def spool(self) -> SpoolLike:
        if self._spool is None:
            # Created on first use in the worker process (after uvicorn forks/spawns it),
            # so each process has its own spool writer file.
            from ..spool import Spool

            self._spool = Spool(
                spool_directory(self.config),
                source="collector",
                max_bytes=self.config.max_spool_bytes,
            )
        return self._spool

    def spool_depth(self) -> int:
        return self.spool.depth_bytes()

    def _refuse(self, request: Request, exc: RequestRefused) -> Response:
        request.state.code = exc.code
        self.metrics.add("trackhouse_collector_requests_rejected_total", code=exc.code)
        self.metrics.add("trackhouse_collector_requests_total", status=str(exc.status))
        headers = None
        if "retry_after" in exc.extra:
            headers = {"Retry-After": str(exc.extra["retry_after"])}
        return _json(exc.status, exc.body(), headers)

    async def collect(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        if endpoint not in ENDPOINT_TYPES and endpoint not in BATCH_ENDPOINTS:
            known = sorted({*ENDPOINT_TYPES, *BATCH_ENDPOINTS})
            return _json(
                404,
                {
                    "success": False,
                    "code": "unknown_endpoint",
                    "message": f"/v1/{endpoint} is not an endpoint; use one of "
                    + ", ".join(f"/v1/{e}" for e in known),
                },
            )
        received_at = datetime.now(UTC)
        try:
            header_key = basic_auth_key(request.headers.get("authorization"))
            if header_key is not None and self.config.source_for(header_key) is None:
                raise _unauthorized("the write key is not configured")
            body = await _read_body(request, self.config.max_batch_bytes)
            request.state.bytes = len(body)
            self.metrics.add("trackhouse_collector_bytes_received_total", len(body))
            encoding = request.headers.get("content-encoding")
            data = inflate(body, encoding, self.config.max_batch_bytes)
            payload = parse_json(data)
            key = header_key
            if key is None and isinstance(payload, dict):
                body_key = payload.get("writeKey")
                key = body_key if isinstance(body_key, str) else None
            source = self.config.source_for(key)
            if source is None:
                raise _unauthorized(
                    "the write key is not configured" if key else "no write key was sent"
                )
            request.state.source = source
            prepared = prepare(
                payload, endpoint, source=source, received_at=received_at, config=self.config
            )
            if prepared.lines or prepared.refusals:
                await self._store(prepared, received_at)
        except RequestRefused as exc:
            return self._refuse(request, exc)
        request.state.events = prepared.accepted
        request.state.refused = len(prepared.refusals)
        self.metrics.add("trackhouse_collector_events_received_total", prepared.accepted)
        if prepared.refusals:
            self.metrics.add(
                "trackhouse_collector_events_rejected_total",
                len(prepared.refusals),
                code="refused_message",
            )
            self.metrics.add("trackhouse_collector_requests_total", status="400")
            request.state.code = "refused_messages"
            n = len(prepared.refusals)
            return _json(
                400,
                {
                    "success": False,
                    "code": "refused_messages",
                    "message": (
                        f"{n} message(s) refused, {prepared.accepted} stored; the refused ones "
                        "are recorded in the rejected table with these reasons"
                    ),
                    "accepted": prepared.accepted,
                    "refused": [r.as_dict() for r in prepared.refusals],
                },
            )
        self.metrics.add("trackhouse_collector_requests_total", status="200")
        return _json(200, {"success": True})

    async def _store(self, prepared: Prepared, received_at: datetime) -> None:
        from ..spool import SpoolFullError

        try:
            await anyio.to_thread.run_sync(store, self.spool, prepared, received_at)
        except SpoolFullError as exc:
            retry_after = max(1, int(getattr(exc, "retry_after", 5) or 5))
            raise RequestRefused(
                429,
                "spool_full",
                f"the spool is over its bound ({exc}); retry after {retry_after} s",
                retry_after=retry_after,
            ) from None

    async def settings(self, request: Request) -> Response:
        key = request.path_params["write_key"]
        if self.config.source_for(key) is None:
            return _json(401, _unauthorized("the write key is not configured").body())
        base = self.config.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        scheme, _, host = base.partition("://")
        # What analytics.js / analytics-next need to send to this collector instead of
        # api.segment.io, with no destinations and no vendor metrics.
        return _json(
            200,
            {
                "integrations": {
                    "Segment.io": {
                        "apiKey": key,
                        "apiHost": f"{host}/v1",
                        "protocol": scheme,
                        "unbundledIntegrations": [],
                        "addBundledMetadata": False,
                        "maybeBundledConfigIds": {},
                    }
                },
                "plan": {
                    "track": {"__default": {"enabled": True, "integrations": {}}},
                    "identify": {"__default": {"enabled": True}},
                    "group": {"__default": {"enabled": True}},
                },
                "edgeFunction": {},
                "analyticsNextEnabled": True,
                "middlewareSettings": {},
                "enabledMiddleware": {},
                "metrics": {"sampleRate": 0},
                "legacyVideoPluginsEnabled": False,
                "remotePlugins": [],
            },
        )

    async def healthz(self, request: Request) -> Response:
        return _json(200, {"status": "ok", "spool_depth_bytes": self.spool_depth()})

    async def metrics_endpoint(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")


def _unauthorized(reason: str) -> RequestRefused:
    return RequestRefused(
        401,
        "unauthorized",
        f"{reason}: send the source's write key as the HTTP Basic user name "
        "(empty password) or as writeKey in the body",
    )


def create_app(config: CollectorConfig, *, spool: SpoolLike | None = None) -> Starlette:
    """The collector as an ASGI app. `spool` defaults to `trackhouse.spool.Spool` on
    `config.spool_dir` (source "collector"), created in the serving process."""
    config = with_demo_key(config)
    if not config.write_keys:
        raise TrackhouseError(
            "the collector has no write keys, so it would refuse every request; add one "
            "(--write-key web=sha256:<hex>, TRACKHOUSE_COLLECTOR_WRITE_KEYS or a TOML file)"
        )
    collector = Collector(config, spool)
    routes = [
        Route("/v1/projects/{write_key}/settings", collector.settings, methods=["GET"]),
        Route("/v1/{endpoint}", collector.collect, methods=["POST"]),
        Route("/healthz", collector.healthz, methods=["GET"]),
        Route("/metrics", collector.metrics_endpoint, methods=["GET"]),
    ]
    if config.demo:
        from .demo import demo_routes

        routes += demo_routes(config)
    middleware = [Middleware(AccessLog)]
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                max_age=3600,
            )
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        spool = collector.spool  # open the spool before the first request

        async def seal_when_idle() -> None:
            while True:
                await anyio.sleep(SEAL_INTERVAL)
                await anyio.to_thread.run_sync(spool.seal_if_older)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(seal_when_idle)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        spool.close()  # fsync and seal: the drain can load everything

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.collector = collector
    return app


def app_from_env() -> Starlette:
    """uvicorn's factory in each worker process: the configuration `serve` resolved."""
    text = os.environ.get(ENV_RUNTIME)
    if not text:
        raise TrackhouseError(
            f"{ENV_RUNTIME} is not set; start the collector with `trackhouse serve` "
            "(or `python -m trackhouse.collector serve`)"
        )
    if access_logger.level == logging.NOTSET:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_logger.addHandler(handler)
        access_logger.setLevel(logging.INFO)
        access_logger.propagate = False
    config = CollectorConfig.from_json(text)
    if not config.access_log:
        access_logger.disabled = True
    return create_app(config)


def spool_directory(config: CollectorConfig) -> Path:
    """The configured spool directory, else the warehouse's (`Settings.spool_dir`:
    TRACKHOUSE_SPOOL_DIR, else beside the DuckDB file...), where the drain looks."""
    if config.spool_dir:
        return Path(config.spool_dir)
    from ..settings import load_settings

    return load_settings().spool_dir


def node_modules_dir(config: CollectorConfig) -> Path | None:
    """Where @segment/analytics-next was installed with npm, if anywhere."""
    candidates = [config.node_modules, os.environ.get("TRACKHOUSE_NODE_MODULES", "")]
    from ..settings import find_project_dir

    candidates.append(str(find_project_dir() / "tests" / "sdk" / "node_modules"))
    for candidate in candidates:
        if candidate and (Path(candidate) / "@segment" / "analytics-next").is_dir():
            return Path(candidate)
    return None
