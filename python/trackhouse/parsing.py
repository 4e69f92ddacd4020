"""Turning one Segment/RudderStack event (or one API call) into raw rows.

Pure functions and a small `Batch` of rows per raw table; no I/O. Every
rejection raises `InvalidEventError` with a reason a person can act on.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
# Properties of a `track` event that trackhouse interprets; the rest is custom_data.
_CONVERSION_PROPERTIES = frozenset(
    {"value", "revenue", "currency", "is_confirmed", "is_active", "conversion_id", "source_object"}
)
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
MAX_EVENT_BYTES = 1024 * 1024
# conversions.value is numeric(18, 2)
MAX_CONVERSION_VALUE = Decimal(10) ** 16


def fail(reason: str) -> InvalidEventError:
    return InvalidEventError(reason)


def parse_timestamp(value: Any, field_name: str = "timestamp") -> datetime:
    """ISO 8601 with an offset or Z -> naive UTC datetime."""
    if not isinstance(value, str):
        raise fail(
            f"{field_name} must be an ISO 8601 string such as 2024-05-01T12:00:00Z, "
            f"got {type(value).__name__} {value!r}"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            f"{field_name} {value!r} is not ISO 8601; write it like 2024-05-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise fail(
            f"{field_name} {value!r} has no UTC offset; add one (e.g. {value}Z or {value}+02:00) "
            "so the moment is unambiguous"
        )
    return parsed.astimezone(UTC).replace(tzinfo=None)


def to_utc(at: datetime | None, field_name: str = "at") -> datetime:
    """A Python-API time: aware datetime (or None = now) -> naive UTC."""
    if at is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if not isinstance(at, datetime):
        raise fail(f"{field_name} must be a datetime, got {type(at).__name__} {at!r}")
    if at.tzinfo is None:
        raise fail(
            f"{field_name}={at!r} is a naive datetime; pass an aware one, "
            "e.g. datetime.now(timezone.utc)"
        )
    return at.astimezone(UTC).replace(tzinfo=None)


def _id(value: Any, field_name: str, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise fail(f"{field_name} is required and missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(f"{field_name} must be a string, got {type(value).__name__} {value!r}")
    return _no_nul(str(value), field_name)


def _no_nul(value: str, field_name: str) -> str:
    if "\x00" in value:
        raise fail(f"{field_name} contains a NUL character (\\u0000); remove it from the value")
    return value


def _str(value: Any, field_name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{field_name} must be a string, got {type(value).__name__} {value!r}")
    return _no_nul(value, field_name)


def _bool(value: Any, field_name: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise fail(f"{field_name} must be true or false, got {value!r}")
    return value


def _default(flag: bool | None, default: bool = True) -> bool:
    return default if flag is None else flag


def _obj(value: Any, field_name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(f"{field_name} must be a JSON object, got {type(value).__name__}")
    return value


def parse_decimal(value: Any, field_name: str, max_abs: Decimal | None = None) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise fail(f"{field_name} must be a number, got {type(value).__name__} {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise fail(f"{field_name} must be a number, got {value!r}") from None
    if not number.is_finite() or abs(number) >= Decimal(10) ** 32:
        raise fail(f"{field_name} {value!r} is not a finite number below 10^32")
    if max_abs is not None and abs(number) >= max_abs:
        raise fail(
            f"{field_name} {value!r} is too large: conversion values must be below {max_abs:,}"
        )
    return number.quantize(Decimal("0.000001"))


def parse_currency(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise fail(f"currency {value!r} is not a 3-letter ISO 4217 code such as EUR or USD")
    return value.upper()


def parse_date(value: Any, field_name: str = "date") -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10]) if len(value) >= 10 else date.fromisoformat(value)
        except ValueError:
            pass
    raise fail(f"{field_name} {value!r} is not a date; write it as YYYY-MM-DD")


def check_metric(metric: Any) -> str:
    if (
        not isinstance(metric, str)
        or metric.count(".") != 1
        or metric.startswith(".")
        or metric.endswith(".")
    ):
        raise fail(f"metric {metric!r} must be written as 'domain.metric', e.g. 'users.user_count'")
    return metric


def check_period(period: Any) -> str:
    if period not in PERIODS:
        raise fail(f"period {period!r} is not one of: {', '.join(PERIODS)}")
    return str(period)


def has_tracking(url: str | None) -> bool:
    """True when the URL's query string names any of the 12 tracking parameters."""
    if not url or "?" not in url:
        return False
    query = urlsplit(url).query
    return any(name in _TRACKING_SET for name, _ in parse_qsl(query, keep_blank_values=True))


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
    """
    if not isinstance(event, dict):
        raise fail(f"each line must be a JSON object, got a JSON {type(event).__name__}")
    event_type = event.get("type")
    if event_type not in EVENT_TYPES and not (api and event_type in API_TYPES):
        raise fail(f"type {event_type!r} is not one of: {', '.join(EVENT_TYPES)}")
    message_id = event.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise fail(
            f"messageId must be a non-empty string (the de-duplication key), got {message_id!r}"
        )
    at = parse_timestamp(event.get("timestamp"))
    anonymous_id = _id(event.get("anonymousId"), "anonymousId")
    user_id = _id(event.get("userId"), "userId")
    properties = _obj(event.get("properties"), "properties")
    context = _obj(event.get("context"), "context")
    traits = _obj(event.get("traits"), "traits")
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
        rows.append(
            (
                "users",
                (
                    message_id,
                    user_id,
                    parse_timestamp(traits["created_at"], "date_joined")
                    if traits.get("created_at")
                    else None,
                    _bool(traits.get("is_active"), "is_active"),
                    _id(traits.get("account_id"), "account_id"),
                    at,
                    received_at,
                ),
            )
        )
    elif event_type == "account":
        rows.append(
            (
                "accounts",
                (
                    message_id,
                    _id(event.get("groupId"), "account_id", required=True),
                    None,
                    parse_timestamp(traits["subscription_start"], "subscription_start")
                    if traits.get("subscription_start")
                    else None,
                    _str(traits.get("name"), "name"),
                    at,
                    received_at,
                ),
            )
        )
    elif event_type == "conversion_update":
        rows.append(
            (
                "conversion_events",
                (
                    message_id,
                    _id(properties.get("conversion_id"), "conversion_id", required=True),
                    None,
                    None,
                    None,
                    at,
                    parse_decimal(properties.get("value"), "value", max_abs=MAX_CONVERSION_VALUE),
                    parse_currency(properties.get("currency")),
                    _bool(properties.get("is_confirmed"), "is_confirmed"),
                    _bool(properties.get("is_active"), "is_active"),
                    None,
                    None,
                    received_at,
                ),
            )
        )
    elif event_type == "identify":
        if user_id is None:
            raise fail("an identify event needs a userId")
        created = traits.get("created_at") or traits.get("createdAt")
        date_joined = parse_timestamp(created, "traits.created_at") if created else None
        account_id = _id(traits.get("account_id"), "traits.account_id")
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
                    _bool(traits.get("is_active"), "traits.is_active"),
                    account_id,
                    at,
                    received_at,
                ),
            )
        )
    elif event_type == "alias":
        previous_id = _id(event.get("previousId"), "previousId", required=True)
        if user_id is None:
            raise fail("an alias event needs a userId")
        rows.append(
            ("identity_links", (message_id, previous_id, user_id, "alias", at, received_at))
        )
    elif event_type == "group":
        group_id = _id(event.get("groupId"), "groupId", required=True)
        start = traits.get("subscription_start")
        rows.append(
            (
                "accounts",
                (
                    message_id,
                    group_id,
                    user_id,
                    parse_timestamp(start, "traits.subscription_start") if start else None,
                    _str(traits.get("name"), "traits.name"),
                    at,
                    received_at,
                ),
            )
        )
    elif event_type == "page":
        page = _obj(context.get("page"), "context.page")
        url = _str(page.get("url") or properties.get("url"), "url")
        referrer = _str(page.get("referrer") or properties.get("referrer"), "referrer")
        user_agent = _str(context.get("userAgent"), "context.userAgent")
        campaign = _obj(context.get("campaign"), "context.campaign")
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
                        user_agent,
                        orjson.dumps(campaign).decode() if campaign else None,
                        received_at,
                    ),
                )
            )
    elif event_type == "track":
        name = event.get("event")
        if not isinstance(name, str) or not name.strip():
            raise fail(f"a track event needs an event name (a non-empty string), got {name!r}")
        if allowed_events is not None and name not in allowed_events:
            raise fail(
                f"conversion event {name!r} is not allowed; allowed events: "
                f"{', '.join(sorted(allowed_events))}. "
                "Fix the event name or add it to --allowed-events"
            )
        raw_value = properties.get("value", properties.get("revenue"))
        value = parse_decimal(raw_value, "properties.value", max_abs=MAX_CONVERSION_VALUE)
        conversion_id = (
            _id(properties.get("conversion_id"), "properties.conversion_id") or message_id
        )
        custom = {k: v for k, v in properties.items() if k not in _CONVERSION_PROPERTIES}
        source_object = properties.get("source_object")
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
                    parse_currency(properties.get("currency")),
                    # A track event states its whole state (defaults: confirmed,
                    # active), so the latest event wins; API updates by id state
                    # only what they change (null = unchanged).
                    _default(_bool(properties.get("is_confirmed"), "properties.is_confirmed")),
                    _default(_bool(properties.get("is_active"), "properties.is_active")),
                    orjson.dumps(custom).decode() if custom else None,
                    None if source_object is None else str(source_object),
                    received_at,
                ),
            )
        )
    elif event_type == "statistic":
        source_props = properties or event
        object_type = _id(source_props.get("object_type"), "object_type")
        object_id = _id(source_props.get("object_id"), "object_id")
        if (object_type is None) != (object_id is None):
            raise fail("object_type and object_id go together: give both or neither")
        stat_value = parse_decimal(source_props.get("value"), "value")
        if stat_value is None:
            raise fail("a statistic needs a numeric value")
        rows.append(
            (
                "statistics",
                (
                    message_id,
                    check_metric(source_props.get("metric")),
                    stat_value,
                    check_period(source_props.get("period")),
                    parse_date(source_props.get("date"), "date"),
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
