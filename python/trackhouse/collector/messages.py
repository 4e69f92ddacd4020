"""From an HTTP body to the Segment messages the spool stores: pure functions, no I/O.

The collector checks only what it must at the edge — the body (size, gzip, JSON),
the per-event size and NUL characters — and stamps what only the server knows
(`receivedAt`, the skew-corrected `timestamp`, a `messageId` when the client sent
none). What an event *means* is checked by the loader when the spool is drained,
exactly as for `trackhouse load`; an event it cannot accept lands in the rejected
table with the reason.

Clock skew (Segment's rule): the client's own time of the event is kept in
`originalTimestamp`; when the request carries `sentAt` (the client's clock when it
sent the batch), `timestamp = receivedAt - (sentAt - originalTimestamp)`, so a
device whose clock is off by an hour still gets the right time. An explicit
`timestamp` (e.g. a historical import) is the event's client time like any other:
with `sentAt` it is shifted by the same (receivedAt - sentAt) — network delay plus
the client's clock error, which leaves a correct historical time correct; without
`sentAt` it is kept exactly as sent. With no time at all, `timestamp = receivedAt`.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from .config import CollectorConfig

# URL path -> the message type it implies. `batch`/`import` carry typed messages.
ENDPOINT_TYPES = {
    "track": "track",
    "page": "page",
    "screen": "screen",
    "identify": "identify",
    "group": "group",
    "alias": "alias",
    # analytics.js / analytics-next (Content-Type text/plain, writeKey in the body)
    "t": "track",
    "p": "page",
    "s": "screen",
    "i": "identify",
    "g": "group",
    "a": "alias",
}
BATCH_ENDPOINTS = frozenset({"batch", "import", "b"})
_NUL_ESCAPE = b"\\u0000"


class RequestRefused(Exception):
    """The whole request is refused: nothing of it was stored."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def body(self) -> dict[str, Any]:
        # `code` and `message` are what Segment's own SDKs read from an error body.
        return {"success": False, "code": self.code, "message": self.message, **self.extra}


@dataclass
class Refusal:
    """A message refused at the edge; the spool records it (payload and reason) for
    the drain to write to the rejected table, so nothing is lost."""

    index: int
    message_id: str | None
    reason: str
    payload: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "reason": self.reason}


@dataclass
class Prepared:
    """What one request becomes: lines for the spool and the refused messages."""

    lines: list[bytes] = field(default_factory=list)
    accepted: int = 0
    refusals: list[Refusal] = field(default_factory=list)


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The request body without its Content-Encoding, never more than `limit` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise RequestRefused(
            415,
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding",
        )
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RequestRefused(
            400, "bad_encoding", f"the body is not valid {encoding} ({exc}); send it again"
        ) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestRefused(
            400,
            "body_too_large",
            f"the body inflates past {limit:,} bytes (Segment's batch limit); send smaller batches",
        )
    return out


def parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(
            400, "invalid_json", f"the body is not valid JSON ({exc}); send one JSON object"
        ) from None


def _parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time with an offset, or None (the loader explains bad ones)."""
    return _parse_iso(value) if isinstance(value, str) else None


@lru_cache(maxsize=256)  # a batch's sentAt repeats for every message
def _parse_iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def iso(at: datetime) -> str:
    text = at.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def apply_clock_skew(message: dict[str, Any], sent_at: Any, received_at: datetime) -> None:
    """Set `originalTimestamp` and the corrected `timestamp` (see the module docstring)."""
    client_time = message.get("originalTimestamp", message.get("timestamp"))
    if client_time is None:
        message["timestamp"] = iso(received_at)
        return
    message.setdefault("originalTimestamp", client_time)
    original = _parse_time(client_time)
    sent = _parse_time(sent_at)
    if original is not None and sent is not None:
        message["timestamp"] = iso(received_at - (sent - original))
    elif "timestamp" not in message:
        message["timestamp"] = client_time


def _nul_path(value: Any, path: str) -> str | None:
    """Where the first NUL character is (a dotted path), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return f"{path}.{key!r}" if path else repr(key)
            found = _nul_path(item, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}[{i}]")
            if found:
                return found
    return None


def content_message_id(encoded: bytes, source: str) -> str:
    """A messageId for a message that has none: the same content gives the same id,
    so a client's retry of it still lands once."""
    return "th-" + hashlib.sha256(source.encode() + b"\0" + encoded).hexdigest()[:32]


def _merge(outer: Any, inner: Any) -> Any:
    """The batch's context/integrations under the message's own (the message wins)."""
    if isinstance(outer, dict) and isinstance(inner, dict):
        return {**outer, **inner}
    return inner if inner is not None else outer


def prepare(
    payload: Any,
    endpoint: str,
    *,
    source: str,
    received_at: datetime,
    config: CollectorConfig,
) -> Prepared:
    """The spool lines of one request's payload (already parsed JSON)."""
    if not isinstance(payload, dict):
        raise RequestRefused(
            400,
            "invalid_body",
            f"the body must be a JSON object, got a JSON {type(payload).__name__}",
        )
    if endpoint in BATCH_ENDPOINTS:
        messages = payload.get("batch")
        if not isinstance(messages, list):
            raise RequestRefused(
                400,
                "invalid_batch",
                "a batch body needs a 'batch' list of messages, e.g. "
                '{"batch": [{"type": "track", ...}]}',
            )
        if len(messages) > config.max_batch_events:
            raise RequestRefused(
                400,
                "too_many_events",
                f"the batch has {len(messages):,} messages; at most "
                f"{config.max_batch_events:,} per batch (Segment's limit) — split it",
            )
        batch_context = payload.get("context")
        batch_integrations = payload.get("integrations")
        sent_at = payload.get("sentAt")
        forced_type = None
    else:
        messages = [payload]
        batch_context = batch_integrations = sent_at = None
        forced_type = ENDPOINT_TYPES[endpoint]

    out = Prepared()
    for index, message in enumerate(messages):
        encoded = orjson.dumps(message)
        message_id = message.get("messageId") if isinstance(message, dict) else None
        if not isinstance(message_id, str) or not message_id:
            message_id = content_message_id(encoded, source)
        reason = None
        if not isinstance(message, dict):
            reason = f"a message must be a JSON object, got a JSON {type(message).__name__}"
        elif len(encoded) > config.max_event_bytes:
            reason = (
                f"the message is {len(encoded):,} bytes; at most {config.max_event_bytes:,} "
                "per message (Segment's limit) — drop large properties or traits"
            )
        elif _NUL_ESCAPE in encoded and (where := _nul_path(message, "")):
            reason = (
                f"{where} contains a NUL character (\\u0000), which the warehouse cannot "
                "store; remove it from the value"
            )
        if reason is not None:
            out.refusals.append(Refusal(index, message_id, reason, encoded.decode()))
            continue
        assert isinstance(message, dict)
        message = dict(message)
        # A browser SDK puts its writeKey in every message; it is a secret, not data.
        message.pop("writeKey", None)
        if forced_type is not None:
            message["type"] = forced_type
        message["messageId"] = message_id
        if batch_context is not None or "context" in message:
            context = _merge(batch_context, message.get("context"))
            if context is not None:
                message["context"] = context
        if batch_integrations is not None or "integrations" in message:
            integrations = _merge(batch_integrations, message.get("integrations"))
            if integrations is not None:
                message["integrations"] = integrations
        message_sent_at = message.get("sentAt", sent_at)
        apply_clock_skew(message, message_sent_at, received_at)
        if message_sent_at is not None:
            message["sentAt"] = message_sent_at
        message["receivedAt"] = iso(received_at)
        message["projectId"] = source
        out.lines.append(orjson.dumps(message))
        out.accepted += 1
    return out
