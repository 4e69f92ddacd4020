"""Turning one Segment/RudderStack event (or one API call) into raw rows.

Pure functions and a small `Batch` of rows per raw table; no I/O.

`FIELDS` declares, once, every field trackhouse reads from an event: its path,
how it is read (its kind) and the event types that read it. `add_event` reads
fields only through that declaration, and the loader's vectorised path
(fastpath.py) derives the fields it reads and the JSON kinds it takes without
asking Python from the same table.

A parser that cannot crash: `add_or_reject` turns every input into accepted
rows or a row of the rejected table with a reason that names the value and the
fix; an unexpected exception becomes "internal error while parsing: …", so
received = accepted + rejected (+ duplicates) always holds.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

import orjson

from .errors import InvalidEventError

TRACKING_PARAMETERS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "fbclid",
    "gclid",
    "msclkid",
    "ttclid",
    "li_fat_id",
    "twclid",
    "igshid",
)
_TRACKING_SET = frozenset(TRACKING_PARAMETERS)
EVENT_TYPES = ("identify", "alias", "group", "page", "screen", "track", "statistic")
# Kinds only the Python API emits (record_activity, record_user, record_account,
# confirm/deactivate by id): they carry no implied activity or identity.
API_TYPES = ("activity", "user", "account", "conversion_update")
PERIODS = ("day", "week", "days_28", "month", "lifetime")

# Limits, counted in UTF-8 bytes and nesting levels, the same on every path.
MAX_EVENT_BYTES = 1024 * 1024
MAX_DEPTH = 64
# conversions.value is numeric(18, 2) in the marts; statistics are numeric(38, 6).
MAX_CONVERSION_VALUE = Decimal(10) ** 16
MAX_STATISTIC_VALUE = Decimal(10) ** 32
# Wide enough for any value below the limits at 6 places: arithmetic never traps.
_DECIMAL_CONTEXT = Context(prec=80, Emax=999, Emin=-999, rounding=ROUND_HALF_UP)
_SIX_PLACES = Decimal("0.000001")
_TWO_PLACES = Decimal("0.01")

# Python's `$` also matches before a final newline: every pattern is fullmatch'ed.
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_METRIC = re.compile(r"[^.\s\x00-\x1f]+\.[^.\s\x00-\x1f]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# urlsplit's clean-up before it splits (WHATWG): leading C0 controls and spaces
# are stripped, tabs and newlines removed anywhere.
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_URL_REMOVED = str.maketrans("", "", "\t\r\n")


# -- the declaration ------------------------------------------------------
_ALL = (*EVENT_TYPES, *API_TYPES)
_CONVERSION = ("track", "conversion_update")


@dataclass(frozen=True)
class Field:
    """One field trackhouse reads: where it is, how it is read, who reads it.

    kinds: `type`, `message_id`, `timestamp`, `id` (string or integer, "" =
    absent), `text`, `bool`, `object`, `money` (numeric(18,2)), `decimal`
    (numeric(38,6)), `currency`, `metric`, `period`, `date`, `any` (kept as text).
    """

    path: str
    kind: str
    types: tuple[str, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))

    @property
    def json_path(self) -> str:
        return "$." + self.path


FIELDS: tuple[Field, ...] = (
    Field("type", "type", _ALL),
    Field("messageId", "message_id", _ALL),
    Field("timestamp", "timestamp", _ALL),
    Field("anonymousId", "id", _ALL),
    Field("userId", "id", _ALL),
    Field("context", "object", _ALL),
    Field("properties", "object", _ALL),
    Field("traits", "object", _ALL),
    Field("context.page", "object", ("page",)),
    Field("context.page.url", "text", ("page",)),
    Field("properties.url", "text", ("page",)),
    Field("context.page.referrer", "text", ("page",)),
    Field("properties.referrer", "text", ("page",)),
    Field("context.userAgent", "text", ("page",)),
    Field("context.campaign", "object", ("page",)),
    Field("event", "text", ("track",)),
    Field("previousId", "id", ("alias",)),
    Field("groupId", "id", ("group", "account")),
    Field("traits.created_at", "timestamp", ("identify", "user")),
    Field("traits.createdAt", "timestamp", ("identify",)),
    Field("traits.is_active", "bool", ("identify", "user")),
    Field("traits.account_id", "id", ("identify", "user")),
    Field("traits.subscription_start", "timestamp", ("group", "account")),
    Field("traits.name", "text", ("group", "account")),
    Field("properties.value", "money", _CONVERSION),
    Field("properties.revenue", "money", ("track",)),
    Field("properties.currency", "currency", _CONVERSION),
    Field("properties.is_confirmed", "bool", _CONVERSION),
    Field("properties.is_active", "bool", _CONVERSION),
    Field("properties.conversion_id", "id", _CONVERSION),
    Field("properties.source_object", "any", ("track",)),
    # A statistic carries its fields in `properties`, or (when there are no
    # properties) at the top level of the event.
    *(
        Field(f"{prefix}{name}", kind, ("statistic",))
        for prefix in ("properties.", "")
        for name, kind in (
            ("metric", "metric"),
            ("value", "decimal"),
            ("period", "period"),
            ("date", "date"),
            ("object_type", "id"),
            ("object_id", "id"),
        )
    ),
)
_BY_TYPE: dict[str, dict[str, Field]] = {
    kind: {f.path: f for f in FIELDS if kind in f.types} for kind in _ALL
}
# Objects whose keys trackhouse reads: a duplicated key in one of them is ambiguous.
OBJECT_PATHS = ("", *(f.path for f in FIELDS if f.kind == "object"))
# Every declared key written as a key (followed by ':'): a line where one of them
# occurs twice is checked for duplicated keys by a parser that sees them (orjson
# keeps the last silently). Without a backslash in the line no string can hold
# `"name":`, so a value such as "page" (of "type") is not counted.
_DECLARED_KEY = re.compile(
    '"(' + "|".join(sorted({re.escape(k) for f in FIELDS for k in f.keys})) + r')"\s*:'
)


def fields_for(event_type: str) -> tuple[Field, ...]:
    """The declared fields an event of this type reads, in declaration order."""
    return tuple(_BY_TYPE.get(event_type, {}).values())


# -- readers --------------------------------------------------------------
def fail(reason: str) -> InvalidEventError:
    return InvalidEventError(reason)


def show(value: Any, limit: int = 120) -> str:
    """A value for a message: its repr, cut to `limit` characters."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {len(str(Decimal(value))):,} digits"
    try:
        text = repr(value)
    except Exception:  # e.g. a container holding an int too long for str()
        text = f"<a {type(value).__name__} that cannot be shown>"
    return text if len(text) <= limit else f"{text[: limit - 5]}…{text[-4:]}"


def parse_timestamp(value: Any, field_name: str = "timestamp") -> datetime:
    """ISO 8601 with an offset or Z -> naive UTC datetime."""
    if not isinstance(value, str):
        raise fail(
            f"{field_name} must be an ISO 8601 string such as 2024-05-01T12:00:00Z, "
            f"got {type(value).__name__} {show(value)}"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            f"{field_name} {show(value)} is not ISO 8601; write it like 2024-05-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise fail(
            f"{field_name} {show(value)} has no UTC offset; add one (e.g. {value[:40]}Z or "
            f"{value[:40]}+02:00) so the moment is unambiguous"
        )
    return _as_utc(parsed, field_name)


def _as_utc(moment: datetime, field_name: str) -> datetime:
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise fail(
            f"{field_name} {show(moment.isoformat())} is out of range once converted to UTC "
            "(years 0001-9999); check the date"
        ) from None


def to_utc(at: datetime | None, field_name: str = "at") -> datetime:
    """A Python-API time: aware datetime (or None = now) -> naive UTC."""
    if at is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if not isinstance(at, datetime):
        raise fail(f"{field_name} must be a datetime, got {type(at).__name__} {show(at)}")
    if at.tzinfo is None:
        raise fail(
            f"{field_name}={show(at)} is a naive datetime; pass an aware one, "
            "e.g. datetime.now(timezone.utc)"
        )
    return _as_utc(at, field_name)


def _no_nul(value: str, field_name: str) -> str:
    if "\x00" in value:
        raise fail(
            f"{field_name} {show(value)} contains a NUL character (\\u0000), which PostgreSQL "
            "cannot store; remove it from the value"
        )
    return value


def _id(value: Any, field_name: str, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise fail(f"{field_name} is required and missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(f"{field_name} must be a string, got {type(value).__name__} {show(value)}")
    return _no_nul(str(value), field_name)


def _str(value: Any, field_name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{field_name} must be a string, got {type(value).__name__} {show(value)}")
    return _no_nul(value, field_name)


def _bool(value: Any, field_name: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise fail(f"{field_name} must be true or false, got {show(value)}")
    return value


def _default(flag: bool | None, default: bool = True) -> bool:
    return default if flag is None else flag


def _obj(value: Any, field_name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(f"{field_name} must be a JSON object, got {type(value).__name__}")
    return value


def parse_decimal(
    value: Any,
    field_name: str,
    max_abs: Decimal | None = None,
    places: Decimal = _SIX_PLACES,
) -> Decimal | None:
    """A number (int, float, Decimal or a decimal string) -> Decimal at 6 places.

    `max_abs` (default: below 10^32, what numeric(38,6) holds) is checked on the
    value rounded to `places`, the scale of the column it ends up in.
    """
    if value is None:
        return None
    limit = MAX_STATISTIC_VALUE if max_abs is None else max_abs
    if isinstance(value, bool):
        raise fail(f"{field_name} must be a number, got {show(value)}")
    if isinstance(value, int):
        number = Decimal(value)  # exact, whatever its size
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str) and _NUMBER.fullmatch(value):
        number = Decimal(value)
    else:
        raise fail(
            f'{field_name} must be a number (e.g. 19.99 or "19.99"), '
            f"got {type(value).__name__} {show(value)}"
        )
    if not number.is_finite():
        raise fail(f"{field_name} {show(value)} is not a finite number; send a plain number")
    too_large = fail(
        f"{field_name} {show(value)} is too large: it must be below {limit:,} "
        "(what the warehouse column holds); check the unit or split the value"
    )
    if number.adjusted() >= 40:
        raise too_large
    rounded = number.quantize(places, context=_DECIMAL_CONTEXT)
    if abs(rounded) >= limit:
        raise too_large
    return number.quantize(_SIX_PLACES, context=_DECIMAL_CONTEXT)


def parse_currency(value: Any, field_name: str = "currency") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise fail(f"{field_name} {show(value)} is not a 3-letter ISO 4217 code such as EUR or USD")
    return value.upper()


def parse_date(value: Any, field_name: str = "date") -> date:
    """YYYY-MM-DD, or an ISO 8601 timestamp whose date (as written) is taken."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value[:10]):
        try:
            if len(value) == 10:
                return date.fromisoformat(value)
            datetime.fromisoformat(value)  # the rest must be a valid time
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise fail(f"{field_name} {show(value)} is not a date; write it as YYYY-MM-DD")


def check_metric(metric: Any, field_name: str = "metric") -> str:
    if not isinstance(metric, str) or not _METRIC.fullmatch(metric):
        raise fail(
            f"{field_name} {show(metric)} must be written as 'domain.metric', "
            "e.g. 'users.user_count' (no spaces)"
        )
    return metric


def check_period(period: Any, field_name: str = "period") -> str:
    if not isinstance(period, str) or period not in PERIODS:
        raise fail(f"{field_name} {show(period)} is not one of: {', '.join(PERIODS)}")
    return period


def url_query(url: str) -> str:
    """The query string of a URL, as `urlsplit` finds it, without its failure modes
    (it raises on some hosts, e.g. an unclosed '[')."""
    url = url.lstrip(_C0_OR_SPACE).translate(_URL_REMOVED)
    before_fragment = url.partition("#")[0]
    return before_fragment.partition("?")[2]


def has_tracking(url: str | None) -> bool:
    """True when the URL's query string names any of the 12 tracking parameters."""
    if not url or "?" not in url:
        return False
    from urllib.parse import parse_qsl

    query = url_query(url)
    return any(name in _TRACKING_SET for name, _ in parse_qsl(query, keep_blank_values=True))


_READERS: dict[str, Any] = {
    "type": lambda v, n: v,
    "message_id": lambda v, n: v,
    "timestamp": lambda v, n: None if v is None or v == "" else parse_timestamp(v, n),
    "id": _id,
    "text": _str,
    "bool": _bool,
    "object": _obj,
    "money": lambda v, n: parse_decimal(v, n, MAX_CONVERSION_VALUE, _TWO_PLACES),
    "decimal": lambda v, n: parse_decimal(v, n, MAX_STATISTIC_VALUE),
    "currency": parse_currency,
    "metric": lambda v, n: v if v is None else check_metric(v, n),
    "period": lambda v, n: v if v is None else check_period(v, n),
    "date": lambda v, n: v if v is None else parse_date(v, n),
    "any": lambda v, n: v,
}


# Per event type, how its declared fields are read.
def _plan(fields: Mapping[str, Field]) -> tuple[tuple[tuple[str, ...], list[Any]], ...]:
    """Fields grouped by the object that holds them, objects before their members."""
    groups: dict[tuple[str, ...], list[Any]] = {}
    for f in fields.values():
        groups.setdefault(f.keys[:-1], []).append((f.path, f.keys[-1], _READERS[f.kind], f.kind))
    return tuple(sorted(groups.items(), key=lambda item: len(item[0])))


_PLANS = {kind: _plan(fields) for kind, fields in _BY_TYPE.items()}


class Fields:
    """The declared fields of one event, read and validated once each."""

    def __init__(self, event: Mapping[str, Any], event_type: str) -> None:
        self.event = event
        self.declared = _BY_TYPE[event_type]
        self.values: dict[str, Any] = {}
        values = self.values
        for parents, members in _PLANS[event_type]:
            holder: Any = event
            for key in parents:
                holder = holder.get(key) if isinstance(holder, dict) else None
            if not isinstance(holder, dict):
                holder = {}
            for path, leaf, reader, kind in members:
                raw = holder.get(leaf)
                if raw is None and kind != "object":
                    values[path] = None  # every reader but object's reads None as None
                else:
                    values[path] = reader(raw, path)

    def __getitem__(self, path: str) -> Any:
        return self.values[path]  # KeyError: the path is not declared for this type

    def raw(self, path: str) -> Any:
        """The value as sent (for `any` fields and presence tests)."""
        assert path in self.declared, path
        holder: Any = self.event
        for key in path.split("."):
            holder = holder.get(key) if isinstance(holder, dict) else None
        return holder


# -- whole-event checks ---------------------------------------------------
def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character is (in a key or a string) and the string, if anywhere."""
    if isinstance(value, str):
        return f"{path or 'the event'} {show(value)}" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return f"a key of {path or 'the event'} {show(key)}"
            found = _nul_path(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}[{i}]")
            if found:
                return found
    return None


class _Object(dict):  # type: ignore[type-arg]
    duplicated: frozenset[str] = frozenset()


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicated = frozenset(k for k, _ in pairs if k in seen or seen.add(k))
    return obj


def duplicated_field(payload: str, event_type: str) -> str | None:
    """The first declared field (or object holding one) whose key appears twice in its
    object in the text of the event, if any. JSON parsers disagree on which of two
    equal keys wins (DuckDB's takes the first, orjson the last): such a line is
    ambiguous, so it is rejected rather than guessed."""
    if "\\" not in payload:
        found = _DECLARED_KEY.findall(payload)
        if len(set(found)) == len(found):
            return None  # no declared key written twice: nothing to check
    tree = json.loads(payload, object_pairs_hook=_pairs)
    declared = [f.keys for f in fields_for(event_type)] or [("type",)]
    for keys in [("type",), *declared]:
        holder: Any = tree
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(holder, _Object) and keys[-1] in holder.duplicated:
            return ".".join(keys)
    return None


# -- the batch ------------------------------------------------------------
@dataclass
class Batch:
    """Rows per raw table, in the tables' column order, waiting to be written.

    `rows` holds tuples from the Python parser; `arrow` holds whole Arrow tables
    from the loader's vectorised path (same columns, same order).
    """

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    arrow: dict[str, list[Any]] = field(default_factory=dict)
    rejected: list[tuple[Any, ...]] = field(default_factory=list)
    message_ids: set[str] = field(default_factory=set)
    duplicates_in_batch: int = 0

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, []).append(row)

    @property
    def event_count(self) -> int:
        return len(self.rows.get("events", ())) + sum(
            t.num_rows for t in self.arrow.get("events", ())
        )

    def tables(self) -> list[str]:
        """The raw tables this batch has rows for."""
        return [name for name in {**self.rows, **self.arrow} if self.row_count(name)]

    def row_count(self, name: str) -> int:
        return len(self.rows.get(name, ())) + sum(t.num_rows for t in self.arrow.get(name, ()))

    def __len__(self) -> int:
        return self.event_count + len(self.rejected)


def storable(text: str) -> str:
    """Text PostgreSQL can store: NUL characters and lone surrogates shown as escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def rejected_id(source: str, line_number: int | None, payload: str) -> str:
    """Stable id of a rejected line, so loading a file twice records it once."""
    digest = hashlib.sha256(f"{source}\0{line_number}\0{payload}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def reject(
    batch: Batch,
    *,
    payload: str,
    reason: str,
    source: str,
    line_number: int | None,
    received_at: datetime,
    key: str | None = None,
) -> None:
    """Add a row to the rejected table: the original payload, where, and why."""
    payload, reason = storable(payload), storable(reason)
    batch.rejected.append(
        (
            rejected_id(source, line_number, payload if key is None else payload + key),
            source,
            line_number,
            payload,
            reason,
            received_at,
        )
    )


def add_or_reject(
    batch: Batch,
    event: Any,
    *,
    payload: str,
    source: str,
    line_number: int | None,
    received_at: datetime,
    allowed_events: Collection[str] | None = None,
    api: bool = False,
    key: str | None = None,
) -> str | None:
    """`add_event`, or a rejected row: returns the reason (None = accepted or a
    duplicate in this batch). Never raises, whatever `event` is."""
    try:
        add_event(
            batch,
            event,
            payload=payload,
            source=source,
            line_number=line_number,
            received_at=received_at,
            allowed_events=allowed_events,
            api=api,
        )
        return None
    except InvalidEventError as exc:
        reason = str(exc)
    except Exception as exc:  # the parser's own bug must not stop a load
        reason = (
            f"internal error while parsing: {type(exc).__name__}: {str(exc)[:300]}; "
            "the line is kept here, please report it"
        )
    reject(
        batch,
        payload=payload,
        reason=reason,
        source=source,
        line_number=line_number,
        received_at=received_at,
        key=key,
    )
    return reason


def add_event(
    batch: Batch,
    event: Any,
    *,
    payload: str,
    source: str,
    line_number: int | None,
    received_at: datetime,
    allowed_events: Collection[str] | None = None,
    api: bool = False,
) -> bool:
    """Validate one Segment-spec event and add its rows to `batch`.

    Returns False when the messageId is already in this batch (a duplicate).
    Raises InvalidEventError (nothing added) when the event cannot be accepted.
    `payload` is the event's JSON text as received (the size, depth, NUL and
    duplicated-key checks read it).
    """
    if not isinstance(event, dict):
        raise fail(f"each line must be a JSON object, got a JSON {type(event).__name__}")
    if len(payload) * 4 > MAX_EVENT_BYTES:
        size = len(payload.encode("utf-8", "surrogatepass"))
        if size > MAX_EVENT_BYTES:
            raise fail(
                f"the event is {size:,} bytes; events over {MAX_EVENT_BYTES:,} bytes are not "
                "accepted (Segment's own limit is 32 KB); drop the oversized properties"
            )
    if payload.count("{") + payload.count("[") > MAX_DEPTH and _depth(event) > MAX_DEPTH:
        raise fail(f"the event is nested deeper than {MAX_DEPTH} levels; flatten its properties")
    if "\\u0000" in payload or "\x00" in payload:
        where = _nul_path(event)
        if where:
            raise fail(
                f"{where} contains a NUL character (\\u0000), which PostgreSQL cannot store; "
                "remove it from the value"
            )
    event_type = event.get("type")
    if not isinstance(event_type, str) or (
        event_type not in EVENT_TYPES and not (api and event_type in API_TYPES)
    ):
        raise fail(f"type {show(event_type)} is not one of: {', '.join(EVENT_TYPES)}")
    if not api:
        duplicated = duplicated_field(payload, event_type)
        if duplicated:
            raise fail(
                f"the key {duplicated!r} appears twice in its object; JSON readers disagree on "
                "which one counts, so the event is ambiguous: keep one of them"
            )
    message_id = event.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise fail(
            f"messageId must be a non-empty string (the de-duplication key), got {show(message_id)}"
        )
    _no_nul(message_id, "messageId")
    f = Fields(event, event_type)
    at = f["timestamp"]
    if at is None:
        parse_timestamp(event.get("timestamp"))  # raises: the timestamp is required
    anonymous_id = f["anonymousId"]
    user_id = f["userId"]
    if event_type in ("identify", "alias", "group", "page", "screen", "track") and not (
        user_id or anonymous_id
    ):
        raise fail("an event needs a userId or an anonymousId; add one of them")

    rows: list[tuple[str, tuple[Any, ...]]] = []
    implies_activity = event_type in EVENT_TYPES
    if event_type == "activity":
        if user_id is None:
            raise fail("record_activity needs a user_id")
        implies_activity = True
    elif event_type == "user":
        if user_id is None:
            raise fail("record_user needs a user_id")
        row = (f["traits.created_at"], f["traits.is_active"], f["traits.account_id"])
        rows.append(("users", (message_id, user_id, *row, at, received_at)))
    elif event_type == "account":
        account_id = _id(f["groupId"], "account_id", required=True)
        rows.append(
            (
                "accounts",
                (
                    message_id,
                    account_id,
                    None,
                    f["traits.subscription_start"],
                    f["traits.name"],
                    at,
                    received_at,
                ),
            )
        )
    elif event_type == "conversion_update":
        conversion_id = _id(f["properties.conversion_id"], "conversion_id", required=True)
        rows.append(
            (
                "conversion_events",
                (
                    message_id,
                    conversion_id,
                    None,
                    None,
                    None,
                    at,
                    f["properties.value"],
                    f["properties.currency"],
                    f["properties.is_confirmed"],
                    f["properties.is_active"],
                    None,
                    None,
                    received_at,
                ),
            )
        )
    elif event_type == "identify":
        if user_id is None:
            raise fail("an identify event needs a userId")
        date_joined = f["traits.created_at"] or f["traits.createdAt"]
        if anonymous_id is not None:
            rows.append(
                ("identity_links", (message_id, anonymous_id, user_id, "identify", at, received_at))
            )
        rows.append(
            (
                "users",
                (
                    message_id,
                    user_id,
                    date_joined,
                    f["traits.is_active"],
                    f["traits.account_id"],
                    at,
                    received_at,
                ),
            )
        )
    elif event_type == "alias":
        previous_id = _id(f["previousId"], "previousId", required=True)
        if user_id is None:
            raise fail("an alias event needs a userId")
        rows.append(
            ("identity_links", (message_id, previous_id, user_id, "alias", at, received_at))
        )
    elif event_type == "group":
        group_id = _id(f["groupId"], "groupId", required=True)
        rows.append(
            (
                "accounts",
                (
                    message_id,
                    group_id,
                    user_id,
                    f["traits.subscription_start"],
                    f["traits.name"],
                    at,
                    received_at,
                ),
            )
        )
    elif event_type == "page":
        # page.url or properties.url: an empty string falls through to the next
        url = f["context.page.url"] or f["properties.url"]
        referrer = f["context.page.referrer"] or f["properties.referrer"]
        campaign = f["context.campaign"]
        if campaign or (url and has_tracking(url)):
            rows.append(
                (
                    "touchpoints",
                    (
                        message_id,
                        anonymous_id,
                        user_id,
                        at,
                        url,
                        referrer,
                        f["context.userAgent"],
                        orjson.dumps(campaign).decode() if campaign else None,
                        received_at,
                    ),
                )
            )
    elif event_type == "track":
        name = f["event"]
        if name is None or not name.strip():
            raise fail(f"a track event needs an event name (a non-empty string), got {show(name)}")
        if allowed_events is not None and name not in allowed_events:
            raise fail(
                f"conversion event {show(name)} is not allowed; allowed events: "
                f"{', '.join(sorted(allowed_events))}. "
                "Fix the event name or add it to --allowed-events"
            )
        properties = f["properties"]
        value = f["properties.value"]
        if properties.get("value") is None:
            value = f["properties.revenue"]
        conversion_id = f["properties.conversion_id"] or message_id
        custom = {k: v for k, v in properties.items() if f"properties.{k}" not in f.declared}
        source_object = f.raw("properties.source_object")
        rows.append(
            (
                "conversion_events",
                (
                    message_id,
                    conversion_id,
                    name,
                    anonymous_id,
                    user_id,
                    at,
                    value,
                    f["properties.currency"],
                    # A track event states its whole state (defaults: confirmed,
                    # active), so the latest event wins; API updates by id state
                    # only what they change (null = unchanged).
                    _default(f["properties.is_confirmed"]),
                    _default(f["properties.is_active"]),
                    orjson.dumps(custom).decode() if custom else None,
                    None if source_object is None else _no_nul(str(source_object), "source_object"),
                    received_at,
                ),
            )
        )
    elif event_type == "statistic":
        prefix = "properties." if f["properties"] else ""
        object_type = f[f"{prefix}object_type"]
        object_id = f[f"{prefix}object_id"]
        if (object_type is None) != (object_id is None):
            raise fail("object_type and object_id go together: give both or neither")
        stat_value = f[f"{prefix}value"]
        if stat_value is None:
            raise fail("a statistic needs a numeric value")
        rows.append(
            (
                "statistics",
                (
                    message_id,
                    check_metric(f[f"{prefix}metric"], "metric"),
                    stat_value,
                    check_period(f[f"{prefix}period"], "period"),
                    parse_date(f[f"{prefix}date"], "date"),
                    object_type,
                    object_id,
                    at,
                    received_at,
                ),
            )
        )

    # Validation passed: now the event counts, once per batch.
    if message_id in batch.message_ids:
        batch.duplicates_in_batch += 1
        return False
    batch.message_ids.add(message_id)
    if user_id is not None and implies_activity:
        batch.add("activity", (message_id, user_id, at, received_at))
    for table, row in rows:
        batch.add(table, row)
    batch.add(
        "events",
        (
            message_id,
            event_type,
            at,
            anonymous_id,
            user_id,
            source,
            line_number,
            payload,
            received_at,
        ),
    )
    return True
