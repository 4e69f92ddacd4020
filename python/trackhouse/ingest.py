"""The application-side API (SPEC 1.1): every call is appended to a durable spool
and returns at once; a drain loads the spool into the warehouse.

Each call is turned into the Segment-shaped message a file would carry,
validated by the same code as `trackhouse load` (`parsing.add_event`, so a bad
call raises `InvalidEventError` at once and is recorded in `rejected`), given
its `messageId` (and a conversion its `conversion_id`) and appended as one
NDJSON line to the spool (`spool.Spool`): written and fsync'd before the call
returns. The call never touches the warehouse, so a locked DuckDB file, a
PostgreSQL outage or a slow commit cannot block or fail it.

The drain (`spool.drain`) loads sealed segments through the loader, in one of
three modes (`drain=`, or $TRACKHOUSE_DRAIN):

- ``"thread"`` — a background thread drains every `drain_interval` seconds,
  backing off while the warehouse is unavailable (default on PostgreSQL);
- ``"close"`` — drain only on `flush()` / `close()` / interpreter exit (default
  on DuckDB, where a single process may write the file: the spool is otherwise
  loaded by `trackhouse load --spool DIR` or the Dagster landing sensor);
- ``"off"`` — never; an external drain loads the spool.

A drain that fails (warehouse locked or down) is logged, passed to `on_error`
and retried later; it never raises into the application. Only invalid input
raises — and `SpoolFullError` when the spool has reached its size limit
because nothing drains it (the call is then not recorded; nothing is kept in
memory).

Processes: each process appends to its own segment file; a Tracker inherited
through `fork` (gunicorn `--preload`, multiprocessing) starts its own file and
its own thread in the child. SIGKILL loses nothing a call returned from (the
bytes are in the file before it returns); SIGTERM likewise; at normal exit the
segment is sealed and, in "thread"/"close" mode, drained once (bounded wait).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from .errors import InvalidEventError, ValueErrorWithKnownValues
from .parsing import MAX_EVENT_BYTES, Batch, add_event, show, to_utc
from .settings import Settings, load_settings
from .spool import DEFAULT_MAX_BYTES, Spool, SpoolError, drain

log = logging.getLogger("trackhouse")
API_SOURCE = "api"
DRAIN_MODES = ("thread", "close", "off")
_EPOCH = datetime(1970, 1, 1)
# How long a drain at close()/exit waits for a locked DuckDB file before
# leaving the events in the spool for the next drain.
CLOSE_LOCK_TIMEOUT = 5.0

OnError = Callable[[BaseException, str], None]


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


def _drain_mode(value: str | None, settings: Settings) -> str:
    mode = value or os.environ.get("TRACKHOUSE_DRAIN") or "auto"
    if mode == "auto":
        return "close" if settings.is_duckdb else "thread"
    if mode not in DRAIN_MODES:
        raise ValueErrorWithKnownValues(
            "drain mode", mode, (*DRAIN_MODES, "auto"), "Set drain= or TRACKHOUSE_DRAIN."
        )
    return mode


class Tracker:
    """Records calls to a durable spool; a drain writes them to the warehouse.

    >>> with Tracker() as t:
    ...     t.record_activity("user-1")
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        spool_dir: str | os.PathLike[str] | None = None,
        drain: str | None = None,
        drain_interval: float = 1.0,
        flush_interval: float = 0.2,
        fsync_each_call: bool = False,
        max_spool_bytes: int | None = None,
        on_error: OnError | None = None,
        allowed_events: Collection[str] | None = None,
    ) -> None:
        """`flush_interval`: how often the background thread fsyncs, seals the
        segment so a drain can take it, and drains in "thread" mode; 0 runs no
        thread. Every call is written to the spool file before it returns (a
        crash of the process cannot lose it); `fsync_each_call=True` also waits
        for the disk (one fsync shared by the threads calling meanwhile), which
        makes a call as slow as the disk's flush but survives a power loss;
        otherwise a machine crash can lose the last `flush_interval` seconds.
        `on_error(exc, what)` is called (in the thread that hit it) whenever a
        drain or a spool write fails."""
        self.settings = settings or load_settings()
        self.drain_mode = _drain_mode(drain, self.settings)
        self.drain_interval = float(drain_interval)
        self.flush_interval = float(flush_interval)
        self.fsync_each_call = fsync_each_call
        self.on_error = on_error
        self.allowed_events = frozenset(allowed_events) if allowed_events is not None else None
        self.spool_dir = Path(spool_dir) if spool_dir is not None else self.settings.spool_dir
        max_bytes = max_spool_bytes or int(
            os.environ.get("TRACKHOUSE_SPOOL_MAX_BYTES", DEFAULT_MAX_BYTES)
        )
        self.spool = Spool(self.spool_dir, source=API_SOURCE, max_bytes=max_bytes)
        self.drained = _empty_report()
        self._closed = False
        self._active_hours: set[tuple[str, int]] = set()
        self._start()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (t := ref()) and t._start())
        _open_trackers.add(self)

    # -- per process ------------------------------------------------------
    def _start(self) -> None:
        """(Re)create the locks and the background thread: at init and in a forked child."""
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._stop = threading.Event()
        self._failures = 0
        self._next_drain = 0.0
        self._thread: threading.Thread | None = None
        if self.flush_interval > 0 and not self._closed:
            self._thread = threading.Thread(target=self._run, name="trackhouse-spool", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.spool.sync()
                self.spool.seal_if_older()
            except Exception as exc:
                self._report(exc, "sealing the spool segment")
            if self.drain_mode == "thread" and time.monotonic() >= self._next_drain:
                # A short wait for a locked DuckDB file, then back off and retry:
                # close() never waits long for this thread.
                self.drain(lock_timeout=CLOSE_LOCK_TIMEOUT)

    def _report(self, exc: BaseException, what: str) -> None:
        log.warning("trackhouse: %s failed: %s", what, exc)
        if self.on_error is not None:
            try:
                self.on_error(exc, what)
            except Exception:
                log.exception("trackhouse: the on_error hook raised")

    def drain(self, *, lock_timeout: float | None = None) -> bool:
        """Load the sealed spool segments into the warehouse now; never raises.

        Returns whether it succeeded. On failure (warehouse locked, down, a
        bug) the events stay in the spool; the failure is logged and given to
        `on_error`, and the background thread retries with backoff (up to 60 s).
        """
        if not self._drain_lock.acquire(blocking=False):
            return False  # another thread of this process is draining
        try:
            report = drain(
                self.spool_dir, self.settings, lock_timeout=lock_timeout, stop=self._stop
            )
        except Exception as exc:
            self._failures += 1
            backoff = min(60.0, self.drain_interval * 2**self._failures)
            self._next_drain = time.monotonic() + backoff
            self._report(
                exc,
                f"draining the spool {self.spool_dir} into {self.settings.target} "
                f"(the events stay in the spool; next try in {backoff:.0f}s)",
            )
            return False
        else:
            self._failures = 0
            self._next_drain = time.monotonic() + self.drain_interval
            _add(self.drained, report)
            return True
        finally:
            self._drain_lock.release()

    def _emit(
        self,
        event: dict[str, Any],
        *,
        message_id: str | None = None,
        allowed_events: Collection[str] | None = None,
    ) -> str:
        """Validate one call's event and append it to the spool; returns its
        messageId. A bad call is recorded (for `rejected`) and raises."""
        event["messageId"] = message_id or str(uuid.uuid4())
        received_at = datetime.now(UTC).replace(tzinfo=None)
        if self._closed:
            raise InvalidEventError("this Tracker is closed; create a new one to record more")
        try:
            _resolve_times(event)
            event["receivedAt"] = _iso(received_at)
            try:
                line = orjson.dumps(event, default=_json_default)
            except orjson.JSONEncodeError as exc:  # a lone surrogate, a non-string key
                raise InvalidEventError(
                    f"the call's values cannot be written as JSON ({exc}); pass strings "
                    "(valid Unicode), numbers, booleans and dicts with string keys"
                ) from exc
            add_event(
                Batch(),  # validation only: the drain parses the spooled line again
                event,
                payload=line.decode(),  # size, depth and NUL are checked on the JSON text
                source=API_SOURCE,
                line_number=None,
                received_at=received_at,
                allowed_events=allowed_events
                if allowed_events is not None
                else self.allowed_events,
                api=True,
            )
        except Exception as exc:
            # Invalid input, or a value no parser rule foresaw: either way a
            # rejection with its reason, never another exception.
            error = (
                exc
                if isinstance(exc, InvalidEventError)
                else InvalidEventError(
                    f"internal error while validating this call: {type(exc).__name__}: {exc}; "
                    "please report it with the call's arguments"
                )
            )
            try:
                payload = orjson.dumps(event, default=_json_default).decode()
            except Exception:
                payload = show(event, MAX_EVENT_BYTES // 8)
            try:
                self.spool.append_rejected(payload, str(error), received_at)
            except SpoolError as spool_exc:
                self._report(spool_exc, "recording a refused call in the spool")
            if error is exc:
                raise
            raise error from exc
        try:
            self.spool.append([line], sync=self.fsync_each_call)
        except SpoolError as exc:
            self._report(exc, "appending to the spool")
            raise
        return str(event["messageId"])

    def flush(self, *, lock_timeout: float | None = CLOSE_LOCK_TIMEOUT) -> bool:
        """Make everything recorded durable and visible to a drain (fsync, seal);
        then, unless the drain mode is "off", drain now. Never raises for the
        warehouse; returns whether everything reached it."""
        self.spool.sync()
        self.spool.seal()
        if self.drain_mode == "off":
            return False
        return self.drain(lock_timeout=lock_timeout)

    def close(self) -> None:
        """Stop the thread, seal the segment, and drain once (bounded wait)."""
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            # It stops after the segment it is loading (or its short lock wait).
            self._thread.join()
        self._stop.clear()  # so that the final drain below runs to the end
        try:
            self.flush()
        finally:
            self._stop.set()
            self._closed = True

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API (SPEC 1.1) ---------------------------------------------
    # Every call takes an optional `message_id` (the de-duplication key): an app
    # that retries a call with the same one gets exactly one event. Calls that
    # do not return something else return the message id they spooled.
    def record_activity(
        self, user_id: str, at: datetime | None = None, *, message_id: str | None = None
    ) -> bool:
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
            self._emit(
                {"type": "activity", "userId": user_id, "timestamp": _iso(moment)},
                message_id=message_id,
            )
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
        message_id: str | None = None,
    ) -> str:
        context: dict[str, Any] = {"page": {"url": url, "referrer": referrer}}
        if user_agent is not None:
            context["userAgent"] = user_agent
        return self._emit(
            {
                "type": "page",
                "anonymousId": anonymous_id,
                "userId": user_id,
                "timestamp": at,
                "context": context,
            },
            message_id=message_id,
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
        message_id: str | None = None,
    ) -> str:
        """Record a conversion; returns its id (to confirm or deactivate it later).

        The id is chosen before the call returns: to retry a call whose outcome
        you do not know, pass the same `conversion_id` (and `message_id`).
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
            message_id=message_id,
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
        message_id: str | None = None,
    ) -> str:
        """Change a conversion's state later; what is not given stays as it was."""
        properties = {
            "conversion_id": conversion_id,
            "is_confirmed": is_confirmed,
            "is_active": is_active,
            "value": None if value is None else str(_json_number(value)),
            "currency": currency,
        }
        return self._emit(
            {
                "type": "conversion_update",
                "timestamp": at,
                "properties": {k: v for k, v in properties.items() if v is not None},
            },
            message_id=message_id,
        )

    def confirm_conversion(
        self, conversion_id: str, at: datetime | None = None, *, message_id: str | None = None
    ) -> str:
        return self.update_conversion(
            conversion_id, is_confirmed=True, at=at, message_id=message_id
        )

    def deactivate_conversion(
        self, conversion_id: str, at: datetime | None = None, *, message_id: str | None = None
    ) -> str:
        return self.update_conversion(conversion_id, is_active=False, at=at, message_id=message_id)

    def identify(
        self,
        anonymous_id: str,
        user_id: str,
        at: datetime | None = None,
        *,
        message_id: str | None = None,
    ) -> str:
        """An anonymous visitor logged in as `user_id`."""
        return self._emit(
            {
                "type": "identify",
                "anonymousId": anonymous_id,
                "userId": user_id,
                "timestamp": at,
            },
            message_id=message_id,
        )

    def record_user(
        self,
        user_id: str,
        date_joined: datetime,
        is_active: bool = True,
        account_id: str | None = None,
        at: datetime | None = None,
        *,
        message_id: str | None = None,
    ) -> str:
        return self._emit(
            {
                "type": "user",
                "userId": user_id,
                "timestamp": at,
                "traits": {
                    "created_at": date_joined,
                    "is_active": is_active,
                    "account_id": account_id,
                },
            },
            message_id=message_id,
        )

    def record_account(
        self,
        account_id: str,
        subscription_start: datetime,
        name: str | None = None,
        at: datetime | None = None,
        *,
        message_id: str | None = None,
    ) -> str:
        return self._emit(
            {
                "type": "account",
                "groupId": account_id,
                "timestamp": at,
                "traits": {
                    "subscription_start": subscription_start,
                    "name": name,
                },
            },
            message_id=message_id,
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
        *,
        message_id: str | None = None,
    ) -> str:
        """trackstats' `record()`: a value for `"domain.metric"` on a date (default: the
        UTC date of `at`, i.e. today)."""
        try:
            moment = to_utc(at)
        except InvalidEventError:
            self._emit({"type": "statistic", "timestamp": at})  # rejected, and raises
            raise
        return self._emit(
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
            },
            message_id=message_id,
        )


def _empty_report() -> Any:
    from .loader import LoadReport

    return LoadReport()


def _add(total: Any, report: Any) -> None:
    for name in ("received", "accepted", "rejected", "duplicates"):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    total.seconds += report.seconds


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


# Every open Tracker is closed at normal interpreter exit (its thread stopped,
# its segment sealed, a last bounded drain), so no daemon thread is inside a
# database driver while the interpreter shuts down.
_open_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for tracker in list(_open_trackers):
        try:
            tracker.close()
        except Exception:
            log.exception("trackhouse: closing a Tracker at exit failed")


# -- module-level API on a default tracker ---------------------------------
_default: Tracker | None = None
_default_lock = threading.Lock()


def get_tracker() -> Tracker:
    """The process-wide Tracker for the configured target (sealed and, unless the
    drain mode is "off", drained at interpreter exit)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Tracker()  # closed at exit with every open Tracker
            _fsync_on_sigterm(_default)
        return _default


def _fsync_on_sigterm(tracker: Tracker) -> None:
    """Where nobody handles SIGTERM (a plain script or worker: the default action
    kills the process), fsync the spool first, then die as SIGTERM would. The
    calls are already in the file; this makes them survive a power loss too.
    Servers that handle SIGTERM themselves (gunicorn, uvicorn) exit normally,
    which closes the tracker."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum: int, frame: object) -> None:
        tracker.spool.fsync_now()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


def record_activity(
    user_id: str, at: datetime | None = None, *, message_id: str | None = None
) -> bool:
    return get_tracker().record_activity(user_id, at, message_id=message_id)


def record_touchpoint(
    anonymous_id: str,
    url: str,
    *,
    user_id: str | None = None,
    referrer: str | None = None,
    user_agent: str | None = None,
    at: datetime | None = None,
    message_id: str | None = None,
) -> str:
    return get_tracker().record_touchpoint(
        anonymous_id,
        url,
        user_id=user_id,
        referrer=referrer,
        user_agent=user_agent,
        at=at,
        message_id=message_id,
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
    message_id: str | None = None,
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
        message_id=message_id,
    )


def confirm_conversion(
    conversion_id: str, at: datetime | None = None, *, message_id: str | None = None
) -> str:
    return get_tracker().confirm_conversion(conversion_id, at, message_id=message_id)


def deactivate_conversion(
    conversion_id: str, at: datetime | None = None, *, message_id: str | None = None
) -> str:
    return get_tracker().deactivate_conversion(conversion_id, at, message_id=message_id)


def identify(
    anonymous_id: str, user_id: str, at: datetime | None = None, *, message_id: str | None = None
) -> str:
    return get_tracker().identify(anonymous_id, user_id, at, message_id=message_id)


def record_user(
    user_id: str,
    date_joined: datetime,
    is_active: bool = True,
    account_id: str | None = None,
    *,
    message_id: str | None = None,
) -> str:
    return get_tracker().record_user(
        user_id, date_joined, is_active, account_id, message_id=message_id
    )


def record_account(
    account_id: str,
    subscription_start: datetime,
    name: str | None = None,
    *,
    message_id: str | None = None,
) -> str:
    return get_tracker().record_account(account_id, subscription_start, name, message_id=message_id)


def record_statistic(
    metric: str,
    value: Decimal | float | int,
    period: str,
    date: date | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    *,
    message_id: str | None = None,
) -> str:
    return get_tracker().record_statistic(
        metric, value, period, date, object_type, object_id, message_id=message_id
    )


def flush() -> bool:
    """fsync and seal the default tracker's spool segment, and drain it unless the
    drain mode is "off". Never raises for the warehouse."""
    if _default is None:
        return False
    return _default.flush()
