"""The application-side API (SPEC 1.1): buffered, batched, thread-safe writes.

Every call is turned into the same Segment-shaped event a file would carry and
validated by the same code (`parsing.add_event`), so the API and `trackhouse
load` cannot disagree. Calls are buffered; a batch is written when it reaches
`batch_size`, every `flush_interval` seconds by a background thread, and on
`flush()` / `close()` / leaving the `with` block / interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from .errors import InvalidEventError
from .parsing import MAX_EVENT_BYTES, Batch, add_event, reject, show, to_utc
from .settings import Settings, load_settings
from .writer import WriteResult, write_batch

log = logging.getLogger("trackhouse")
API_SOURCE = "api"
_EPOCH = datetime(1970, 1, 1)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds") + "Z"


def _json_number(value: Any) -> Any:
    """Decimals, and integers beyond 64 bits (which orjson refuses), as decimal text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(Decimal(value))
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class Tracker:
    """A buffered writer to the raw tables of one target.

    >>> with Tracker() as t:
    ...     t.record_activity("user-1")
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        batch_size: int = 5_000,
        flush_interval: float = 2.0,
        allowed_events: Collection[str] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.allowed_events = frozenset(allowed_events) if allowed_events is not None else None
        self.written = WriteResult()
        self._batch = Batch()
        self._lock = threading.RLock()
        self._active_hours: set[tuple[str, int]] = set()
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if flush_interval > 0:
            self._thread = threading.Thread(target=self._run, name="trackhouse-flush", daemon=True)
            self._thread.start()

    # -- the buffer -------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # keep the rows; the next flush or close() retries
                log.exception("trackhouse: background flush failed; will retry")

    def _emit(
        self, event: dict[str, Any], *, allowed_events: Collection[str] | None = None
    ) -> None:
        """Validate one call's event and buffer its rows; a bad call is recorded
        in the rejected table (with the call as its payload) and raises."""
        event.setdefault("messageId", str(uuid.uuid4()))
        received_at = datetime.now(UTC).replace(tzinfo=None)
        try:
            payload, unwritable = orjson.dumps(event, default=_json_default).decode(), None
        except Exception as exc:  # e.g. a lone surrogate, a non-string dict key
            payload, unwritable = show(event, MAX_EVENT_BYTES // 8), exc
        with self._lock:
            if self._closed:
                raise InvalidEventError("this Tracker is closed; create a new one to record more")
            try:
                if unwritable is not None:
                    raise InvalidEventError(
                        f"the call's values cannot be written as JSON ({unwritable}); pass "
                        "strings (valid Unicode), numbers, booleans and dicts with string keys"
                    )
                _resolve_times(event)
                add_event(
                    self._batch,
                    event,
                    payload=payload,
                    source=API_SOURCE,
                    line_number=None,
                    received_at=received_at,
                    allowed_events=allowed_events
                    if allowed_events is not None
                    else self.allowed_events,
                    api=True,
                )
            except Exception as exc:  # a bad call is recorded, then raises InvalidEventError
                reason = str(exc)
                if not isinstance(exc, InvalidEventError):
                    reason = f"internal error while parsing: {type(exc).__name__}: {exc}"
                reject(
                    self._batch,
                    payload=payload,
                    reason=reason,
                    source=API_SOURCE,
                    line_number=None,
                    received_at=received_at,
                    key=str(event["messageId"]),
                )
                if isinstance(exc, InvalidEventError):
                    raise
                raise InvalidEventError(reason) from exc
            finally:
                if len(self._batch) >= self.batch_size:
                    self.flush()

    def flush(self) -> WriteResult:
        """Write what is buffered now, in one transaction."""
        with self._lock:
            batch, self._batch = self._batch, Batch()
            try:
                result = write_batch(self.settings, batch)
            except BaseException:
                # Put the rows back in front of anything buffered meanwhile.
                for table, rows in self._batch.rows.items():
                    batch.rows.setdefault(table, []).extend(rows)
                batch.rejected.extend(self._batch.rejected)
                batch.message_ids |= self._batch.message_ids
                self._batch = batch
                raise
            self.written += result
            return result

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            if not self._closed:
                self.flush()
                self._closed = True

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API (SPEC 1.1) ---------------------------------------------
    def record_activity(self, user_id: str, at: datetime | None = None) -> bool:
        """`souvenez`: the user was active at `at` (default now).

        At most one write per user per clock hour (UTC) — enough to keep
        hourly activity exact. Returns whether this call was written.
        """
        try:
            moment = to_utc(at)
        except InvalidEventError:
            # Record the bad call in the rejected table (and raise) like any other.
            self._emit({"type": "activity", "userId": user_id, "timestamp": at})
            raise
        key = (str(user_id), int((moment - _EPOCH).total_seconds() // 3600))
        with self._lock:
            if key in self._active_hours:
                return False
            if len(self._active_hours) > 200_000:
                self._active_hours.clear()  # only costs a few redundant writes
            self._emit({"type": "activity", "userId": user_id, "timestamp": _iso(moment)})
            self._active_hours.add(key)
        return True

    def record_touchpoint(
        self,
        anonymous_id: str,
        url: str,
        *,
        user_id: str | None = None,
        referrer: str | None = None,
        user_agent: str | None = None,
        at: datetime | None = None,
    ) -> None:
        context: dict[str, Any] = {"page": {"url": url, "referrer": referrer}}
        if user_agent is not None:
            context["userAgent"] = user_agent
        self._emit(
            {
                "type": "page",
                "anonymousId": anonymous_id,
                "userId": user_id,
                "timestamp": at,
                "context": context,
            }
        )

    def record_conversion(
        self,
        event: str,
        *,
        anonymous_id: str | None = None,
        user_id: str | None = None,
        value: Decimal | float | int | str | None = None,
        currency: str | None = None,
        is_confirmed: bool = True,
        custom_data: Mapping[str, Any] | None = None,
        source_object: Any = None,
        conversion_id: str | None = None,
        at: datetime | None = None,
        allowed_events: Collection[str] | None = None,
    ) -> str:
        """Record a conversion; returns its id (to confirm or deactivate it later).

        `allowed_events` (or the Tracker's) restricts event names, like the
        seed's `@conversion_events`: another name raises InvalidEventError.
        """
        conversion_id = conversion_id or str(uuid.uuid4())
        properties: dict[str, Any] = dict(custom_data or {})
        properties.update(
            conversion_id=conversion_id,
            value=None if value is None else str(_json_number(value)),
            currency=currency,
            is_confirmed=is_confirmed,
            source_object=None if source_object is None else _source_ref(source_object),
        )
        self._emit(
            {
                "type": "track",
                "event": event,
                "anonymousId": anonymous_id,
                "userId": user_id,
                "timestamp": at,
                "properties": {k: v for k, v in properties.items() if v is not None},
            },
            allowed_events=allowed_events,
        )
        return conversion_id

    def update_conversion(
        self,
        conversion_id: str,
        *,
        is_confirmed: bool | None = None,
        is_active: bool | None = None,
        value: Decimal | float | int | str | None = None,
        currency: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Change a conversion's state later; what is not given stays as it was."""
        properties = {
            "conversion_id": conversion_id,
            "is_confirmed": is_confirmed,
            "is_active": is_active,
            "value": None if value is None else str(_json_number(value)),
            "currency": currency,
        }
        self._emit(
            {
                "type": "conversion_update",
                "timestamp": at,
                "properties": {k: v for k, v in properties.items() if v is not None},
            }
        )

    def confirm_conversion(self, conversion_id: str, at: datetime | None = None) -> None:
        self.update_conversion(conversion_id, is_confirmed=True, at=at)

    def deactivate_conversion(self, conversion_id: str, at: datetime | None = None) -> None:
        self.update_conversion(conversion_id, is_active=False, at=at)

    def identify(self, anonymous_id: str, user_id: str, at: datetime | None = None) -> None:
        """An anonymous visitor logged in as `user_id`."""
        self._emit(
            {
                "type": "identify",
                "anonymousId": anonymous_id,
                "userId": user_id,
                "timestamp": at,
            }
        )

    def record_user(
        self,
        user_id: str,
        date_joined: datetime,
        is_active: bool = True,
        account_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self._emit(
            {
                "type": "user",
                "userId": user_id,
                "timestamp": at,
                "traits": {
                    "created_at": date_joined,
                    "is_active": is_active,
                    "account_id": account_id,
                },
            }
        )

    def record_account(
        self,
        account_id: str,
        subscription_start: datetime,
        name: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self._emit(
            {
                "type": "account",
                "groupId": account_id,
                "timestamp": at,
                "traits": {
                    "subscription_start": subscription_start,
                    "name": name,
                },
            }
        )

    def record_statistic(
        self,
        metric: str,
        value: Decimal | float | int,
        period: str,
        date: date | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """trackstats' `record()`: a value for `"domain.metric"` on a date (default: the
        UTC date of `at`, i.e. today)."""
        try:
            moment = to_utc(at)
        except InvalidEventError:
            self._emit({"type": "statistic", "timestamp": at})  # rejected, and raises
            raise
        self._emit(
            {
                "type": "statistic",
                "timestamp": _iso(moment),
                "properties": {
                    "metric": metric,
                    "value": _json_number(value),
                    "period": period,
                    "date": (date or moment.date()).isoformat(),
                    "object_type": object_type,
                    "object_id": None if object_id is None else str(object_id),
                },
            }
        )


_TIME_FIELDS = (
    (("timestamp",), "at"),
    (("traits", "created_at"), "date_joined"),
    (("traits", "subscription_start"), "subscription_start"),
)


def _resolve_times(event: dict[str, Any]) -> None:
    """The API's datetimes (None = now for `at`) -> ISO 8601 UTC strings, in place."""
    for path, name in _TIME_FIELDS:
        holder = event
        for key in path[:-1]:
            holder = holder.get(key) or {}
        if path[-1] not in holder:
            continue
        value = holder[path[-1]]
        if value is None and name != "at":
            continue
        if value is None or isinstance(value, datetime):
            holder[path[-1]] = _iso(to_utc(value, name))
        elif not isinstance(value, str):
            raise InvalidEventError(
                f"{name} must be a timezone-aware datetime, got {type(value).__name__} {value!r}"
            )


def _source_ref(obj: Any) -> str:
    """`source_object` as 'app_label.model:pk' for Django models, else str()."""
    meta = getattr(obj, "_meta", None)
    pk = getattr(obj, "pk", None)
    if meta is not None and pk is not None:
        return f"{meta.label_lower}:{pk}"
    return str(obj)


# -- module-level API on a default tracker ---------------------------------
_default: Tracker | None = None
_default_lock = threading.Lock()


def get_tracker() -> Tracker:
    """The process-wide Tracker for the configured target (flushed at exit)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Tracker()
            atexit.register(_default.close)
        return _default


def record_activity(user_id: str, at: datetime | None = None) -> bool:
    return get_tracker().record_activity(user_id, at)


def record_touchpoint(
    anonymous_id: str,
    url: str,
    *,
    user_id: str | None = None,
    referrer: str | None = None,
    user_agent: str | None = None,
    at: datetime | None = None,
) -> None:
    get_tracker().record_touchpoint(
        anonymous_id, url, user_id=user_id, referrer=referrer, user_agent=user_agent, at=at
    )


def record_conversion(
    event: str,
    *,
    anonymous_id: str | None = None,
    user_id: str | None = None,
    value: Decimal | float | int | str | None = None,
    currency: str | None = None,
    is_confirmed: bool = True,
    custom_data: Mapping[str, Any] | None = None,
    source_object: Any = None,
    conversion_id: str | None = None,
    at: datetime | None = None,
    allowed_events: Collection[str] | None = None,
) -> str:
    return get_tracker().record_conversion(
        event,
        anonymous_id=anonymous_id,
        user_id=user_id,
        value=value,
        currency=currency,
        is_confirmed=is_confirmed,
        custom_data=custom_data,
        source_object=source_object,
        conversion_id=conversion_id,
        at=at,
        allowed_events=allowed_events,
    )


def confirm_conversion(conversion_id: str, at: datetime | None = None) -> None:
    get_tracker().confirm_conversion(conversion_id, at)


def deactivate_conversion(conversion_id: str, at: datetime | None = None) -> None:
    get_tracker().deactivate_conversion(conversion_id, at)


def identify(anonymous_id: str, user_id: str, at: datetime | None = None) -> None:
    get_tracker().identify(anonymous_id, user_id, at)


def record_user(
    user_id: str, date_joined: datetime, is_active: bool = True, account_id: str | None = None
) -> None:
    get_tracker().record_user(user_id, date_joined, is_active, account_id)


def record_account(account_id: str, subscription_start: datetime, name: str | None = None) -> None:
    get_tracker().record_account(account_id, subscription_start, name)


def record_statistic(
    metric: str,
    value: Decimal | float | int,
    period: str,
    date: date | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
) -> None:
    get_tracker().record_statistic(metric, value, period, date, object_type, object_id)


def flush() -> None:
    if _default is not None:
        _default.flush()
