"""Privacy: forget a person everywhere, refuse them from then on, keep raw data only as
long as allowed (docs/privacy.md).

- `forget(user_ids)` deletes every raw row of those users and of the anonymous ids
  linked to them (identity stitching's rule: an anonymous id belongs to the first
  user it was identified with, chains followed), in one transaction per target;
  records the request in `deletion_requests` (counts, no ids) and the ids, as keyed
  hashes, in `suppressions`. The marts follow on the next dbt build: the incremental
  models rebuild themselves when the deletion log changed (macro
  `trackhouse.reset_after_deletions`).
- `suppress(batch, ...)`: the loader's check; an event whose userId, anonymousId or
  previousId is suppressed is rejected with the reason "suppressed", and the rejected
  row keeps no payload.
- `prune()` blanks what is older than the retention settings: original payloads
  (the ledger) and rejected lines, query strings of touchpoint URLs and referrers
  (the tracking parameters are kept: attribution needs them), user agents (a bot's
  matching pattern is kept: bot filtering needs it). Typed rows are not deleted, so
  every mart keeps its aggregates, incremental or full refresh.
- `pseudonymise(batch, settings)` (called by `suppress`): with TRACKHOUSE_HASH_IDS=1,
  configured once per warehouse (table `id_hashing`), user, anonymous and alias ids
  are stored as their keyed hashes in every raw row, ledger payload and rejected line.
- `hash_id(value, key)`: the keyed hash (BLAKE2b). The key is TRACKHOUSE_PRIVACY_KEY
  or, when unset, one generated once and kept in the raw table `privacy_key`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import sqlalchemy as sa

from .engine import ensure_schema, raw_connection, write_transaction
from .errors import ConfigError, TrackhouseError
from .parsing import TRACKING_PARAMETERS
from .schema import (
    LOAD_SEQUENCE,
    accounts,
    activity,
    conversion_events,
    deletion_requests,
    events,
    id_hashing,
    identity_links,
    rejected,
    statistics,
    suppressions,
    touchpoints,
    users,
)
from .schema import privacy_key as privacy_key_table
from .settings import Settings, load_settings

if TYPE_CHECKING:
    from .loader import LoadReport
    from .parsing import Batch

SUPPRESSED_REASON = "suppressed"
KEY_ENV = "TRACKHOUSE_PRIVACY_KEY"
# Recorded statistics whose object is a person (record_statistic(object_type="user")).
PERSON_OBJECT_TYPES = ("user",)
# How long a process reuses the suppression list it read (a forget in this process
# refreshes it at once; another process's forget is seen within this many seconds).
SUPPRESSION_CACHE_SECONDS = 5.0
# Retention settings: dbt vars recorded by the trackhouse_settings model.
RETENTION_VARS = ("raw_retention_days", "url_query_retention_days", "user_agent_retention_days")
_CHUNK = 500
_TRACKING = frozenset(TRACKING_PARAMETERS)


# -- the key and the hash ---------------------------------------------------


def hash_id(value: str, key: bytes) -> str:
    """The keyed hash of an id (BLAKE2b-128 with the key): 32 hex characters."""
    digest = hashlib.blake2b(
        value.encode("utf-8", "surrogatepass"), key=key, digest_size=16, person=b"trackhouse-id"
    )
    return digest.hexdigest()


def _key_id(key: bytes) -> str:
    return hashlib.blake2b(key, digest_size=4, person=b"trackhouse-kid").hexdigest()


def privacy_key(settings: Settings, conn: sa.Connection | None = None) -> bytes:
    """The hashing key: TRACKHOUSE_PRIVACY_KEY (any string), else the warehouse's own,
    generated on first use. Set the variable to keep the key out of the warehouse, so
    that whoever reads the raw schema cannot test guessed ids against the hashes."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    table = _t(privacy_key_table, settings)

    def read(c: sa.Connection) -> bytes | None:
        row = c.execute(sa.select(table.c.key_hex).order_by(table.c.created_at)).first()
        return bytes.fromhex(row[0]) if row else None

    if conn is not None:
        found = read(conn)
        if found is not None:
            return found
        key = secrets.token_bytes(32)
        conn.execute(
            sa.insert(table).values(key_id=_key_id(key), key_hex=key.hex(), created_at=_now())
        )
        return key
    with _begin(settings) as c:
        return privacy_key(settings, c)


# -- forget -------------------------------------------------------------------


@dataclass
class ForgetReport:
    """What `forget` removed: rows per raw table (no ids are kept in it)."""

    request_id: str
    requested_at: datetime
    user_ids: int
    linked_ids: int
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def rows_deleted(self) -> int:
        return sum(self.rows.values())

    def summary(self) -> str:
        parts = ", ".join(f"{name} {n:,}" for name, n in self.rows.items() if n) or "nothing"
        return (
            f"forgot {self.user_ids} user id(s) and {self.linked_ids} linked anonymous id(s): "
            f"deleted {self.rows_deleted:,} raw rows ({parts}); their ids are suppressed "
            f"from now on (request {self.request_id}). Run dbt build so the marts follow."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "requested_at": self.requested_at.isoformat(),
            "user_ids": self.user_ids,
            "linked_ids": self.linked_ids,
            "rows_deleted": self.rows_deleted,
            "rows": dict(self.rows),
        }


def forget(user_ids: Iterable[str], settings: Settings | None = None) -> ForgetReport:
    """Delete every raw row of these users and of the anonymous ids linked to them,
    suppress the ids, and log the request. Idempotent: forgetting again deletes
    nothing more (the request is logged again, with zero rows)."""
    given = [user_ids] if isinstance(user_ids, str) else list(user_ids)
    asked = sorted({str(u) for u in given})
    if not asked or any(not u.strip() for u in asked):
        raise TrackhouseError(
            f"forget needs one or more non-empty user ids, got {given!r}; pass the userId "
            "values as they were sent (e.g. trackhouse forget user-42)"
        )
    settings = settings or load_settings()
    ensure_schema(settings)
    request_id = uuid.uuid4().hex
    requested_at = _now()
    with _begin(settings) as conn:
        key = privacy_key(settings, conn)
        # With ids hashed at ingestion the raw tables hold hash_id(id): the same value
        # the suppression list keeps, so the stored ids are suppressed as they are.
        hashing = _is_hashing(conn, settings)
        stored = _stored_ids(conn, settings, asked) if hashing else asked
        linked = _linked_ids(conn, settings, stored)
        ids = sorted({*stored, *linked})
        rows = _delete_rows(conn, settings, stored, ids)
        _suppress_ids(conn, settings, key, stored, linked, request_id, requested_at, hashed=hashing)
        conn.execute(
            sa.insert(_t(deletion_requests, settings)).values(
                request_id=request_id,
                requested_at=requested_at,
                ids_hash=hash_id("\x1f".join(asked), key),
                id_count=len(asked),
                linked_id_count=len(linked),
                rows_deleted=sum(rows.values()),
                rows_by_table=orjson.dumps(rows).decode(),
            )
        )
    _invalidate(settings)
    return ForgetReport(request_id, requested_at, len(asked), len(linked), rows)


def _linked_ids(conn: sa.Connection, settings: Settings, user_ids: Sequence[str]) -> list[str]:
    """Anonymous ids that stitching resolves to these users: each id's FIRST link (by
    linked time, receipt, event id — int_identity_links_resolved's order) points into
    the set, followed along chains (a -> b -> user)."""
    links = _t(identity_links, settings)
    found: set[str] = set(user_ids)
    frontier = set(user_ids)
    while frontier:
        candidates: set[str] = set()
        for part in _chunks(sorted(frontier)):
            candidates |= {
                r[0]
                for r in conn.execute(
                    sa.select(links.c.anonymous_id).where(links.c.user_id.in_(part)).distinct()
                )
            }
        candidates -= found
        frontier = set()
        for part in _chunks(sorted(candidates)):
            first: dict[str, str] = {}
            query = (
                sa.select(links.c.anonymous_id, links.c.user_id)
                .where(links.c.anonymous_id.in_(part), links.c.anonymous_id != links.c.user_id)
                .order_by(links.c.occurred_at, links.c.received_at, links.c.event_id)
            )
            for anonymous_id, user_id in conn.execute(query):
                first.setdefault(anonymous_id, user_id)
            frontier |= {a for a, u in first.items() if u in found}
        found |= frontier
    return sorted(found - set(user_ids))


def _delete_rows(
    conn: sa.Connection, settings: Settings, user_ids: Sequence[str], ids: Sequence[str]
) -> dict[str, int]:
    rows: dict[str, int] = {}
    ledger = _t(events, settings)

    def owned(table: sa.Table) -> Any:
        """A row of the person: their user id, or no user id and their anonymous id."""
        cond = table.c.user_id.in_(ids)
        if "anonymous_id" in table.c:
            cond = sa.or_(cond, sa.and_(table.c.user_id.is_(None), table.c.anonymous_id.in_(ids)))
        return cond

    conversions = _t(conversion_events, settings)
    links = _t(identity_links, settings)
    stats = _t(statistics, settings)
    # A conversion goes with all its events (updates by id carry no identity).
    owned_conversions = sa.select(conversions.c.conversion_id).where(owned(conversions))
    conditions: list[tuple[sa.Table, Any]] = [
        (_t(activity, settings), owned(_t(activity, settings))),
        (_t(touchpoints, settings), owned(_t(touchpoints, settings))),
        (conversions, conversions.c.conversion_id.in_(owned_conversions)),
        (links, sa.or_(links.c.user_id.in_(ids), links.c.anonymous_id.in_(ids))),
        (_t(users, settings), _t(users, settings).c.user_id.in_(ids)),
        (_t(accounts, settings), _t(accounts, settings).c.user_id.in_(ids)),
        (
            stats,
            sa.and_(stats.c.object_type.in_(PERSON_OBJECT_TYPES), stats.c.object_id.in_(user_ids)),
        ),
    ]
    ledger_rows = 0
    for table, condition in conditions:
        # The ledger rows of these events go too (they hold the original payloads).
        ledger_rows += conn.execute(
            sa.delete(ledger).where(
                ledger.c.message_id.in_(sa.select(table.c.event_id).where(condition))
            )
        ).rowcount
        rows[str(table.name)] = conn.execute(sa.delete(table).where(condition)).rowcount
    # Events only in the ledger (page views without tracking parameters, ...).
    ledger_rows += conn.execute(sa.delete(ledger).where(owned(ledger))).rowcount
    rows["events"] = ledger_rows
    rows["rejected"] = _delete_rejected(conn, settings, set(ids))
    return {name: int(n) for name, n in rows.items()}


_ID_FIELDS = ("userId", "anonymousId", "previousId", "user_id", "anonymous_id")


def _mentions(payload: str, ids: set[str]) -> bool:
    """Whether a rejected line is about one of the ids: its id fields when it is a
    JSON object, else any quoted occurrence of an id."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return any(orjson.dumps(i).decode() in payload for i in ids)
    if not isinstance(event, dict):
        return any(orjson.dumps(i).decode() in payload for i in ids)
    values = [event.get(f) for f in _ID_FIELDS]
    props = event.get("properties")
    if isinstance(props, dict) and props.get("object_type") in PERSON_OBJECT_TYPES:
        values.append(props.get("object_id"))
    return any(v is not None and not isinstance(v, dict | list) and str(v) in ids for v in values)


def _names_suppressed(payload: str, hit: Any) -> bool:
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(event, dict):
        return False
    return any(isinstance(event.get(f), str | int) and hit(str(event.get(f))) for f in _ID_FIELDS)


def _delete_rejected(conn: sa.Connection, settings: Settings, ids: set[str]) -> int:
    table = _t(rejected, settings)
    doomed: list[str] = []
    for part in _chunks(sorted(ids), 50):
        # A cheap filter in the database, the exact check in Python.
        patterns = [
            "%" + i.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%" for i in part
        ]
        query = sa.select(table.c.rejected_id, table.c.payload).where(
            sa.or_(*(table.c.payload.like(p, escape="!") for p in patterns))
        )
        doomed += [rid for rid, payload in conn.execute(query) if _mentions(payload, ids)]
    deleted = 0
    for part in _chunks(sorted(set(doomed))):
        deleted += conn.execute(sa.delete(table).where(table.c.rejected_id.in_(part))).rowcount
    return deleted


def _suppress_ids(
    conn: sa.Connection,
    settings: Settings,
    key: bytes,
    user_ids: Sequence[str],
    linked: Sequence[str],
    request_id: str,
    at: datetime,
    hashed: bool = False,
) -> None:
    table = _t(suppressions, settings)

    def digest(i: str) -> str:
        return i if hashed else hash_id(i, key)

    wanted = {digest(i): "user" for i in user_ids}
    wanted |= {digest(i): "anonymous" for i in linked if digest(i) not in wanted}
    existing: set[str] = set()
    for part in _chunks(sorted(wanted)):
        existing |= {
            r[0] for r in conn.execute(sa.select(table.c.id_hash).where(table.c.id_hash.in_(part)))
        }
    new = [
        {
            "id_hash": h,
            "id_kind": kind,
            "key_id": _key_id(key),
            "request_id": request_id,
            "suppressed_at": at,
        }
        for h, kind in sorted(wanted.items())
        if h not in existing
    ]
    if new:
        conn.execute(sa.insert(table), new)


# -- suppression in the loader ----------------------------------------------------

_cache: dict[tuple[str, str], tuple[float, frozenset[str], bytes | None]] = {}
_cache_lock = threading.Lock()


def _invalidate(settings: Settings) -> None:
    with _cache_lock:
        _cache.pop((settings.sqlalchemy_url, settings.raw_schema), None)


def suppressed_hashes(settings: Settings) -> tuple[frozenset[str], bytes | None]:
    """The suppression list and the key it was hashed with (None when the list is empty),
    read at most every SUPPRESSION_CACHE_SECONDS per process."""
    cache_key = (settings.sqlalchemy_url, settings.raw_schema)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(cache_key)
        if cached and now - cached[0] < SUPPRESSION_CACHE_SECONDS:
            return cached[1], cached[2]
    ensure_schema(settings)
    schema = settings.raw_schema.replace('"', '""')
    # The driver's connection: on DuckDB it waits while dbt or a loader holds the file.
    with raw_connection(settings) as conn:
        rows = conn.execute(f'select id_hash, key_id from "{schema}".suppressions').fetchall()
        stored = conn.execute(
            f'select key_hex from "{schema}".privacy_key order by created_at'
        ).fetchall()
        if not settings.is_duckdb:
            conn.rollback()
    configured = os.environ.get(KEY_ENV)
    if configured:
        key: bytes | None = hashlib.sha256(configured.encode()).digest()
    else:
        key = bytes.fromhex(stored[0][0]) if stored else None
    hashes = frozenset(r[0] for r in rows)
    if rows:
        stale = {r[1] for r in rows} - ({_key_id(key)} if key else set())
        if stale:
            raise ConfigError(
                f"the suppression list was hashed with key(s) {', '.join(sorted(stale))}, "
                f"but the current key is {_key_id(key) if key else 'missing'}; set {KEY_ENV} "
                "back to the key used when those ids were forgotten (docs/privacy.md), "
                "or the forgotten ids would be accepted again"
            )
    with _cache_lock:
        _cache[cache_key] = (now, hashes, key)
    return hashes, key


_memo: dict[str, bool] = {}
_memo_owner: list[int] = [0]
MEMO_LIMIT = 2_000_000


def _memo_for(hashes: frozenset[str], key: bytes) -> dict[str, bool]:
    """Which ids were found suppressed, kept across chunks while the list and the key
    stay the same (ids repeat: each is hashed once per process, not once per chunk)."""
    owner = hash((hashes, key))
    if _memo_owner[0] != owner or len(_memo) > MEMO_LIMIT:
        _memo.clear()
        _memo_owner[0] = owner
    return _memo


def suppress(batch: Batch, settings: Settings, report: LoadReport) -> None:
    """Reject (reason "suppressed", no payload kept) every event of `batch` whose
    userId, anonymousId or previousId was forgotten; then, when the warehouse hashes
    ids at ingestion, replace them by their hashes (`pseudonymise`). The loader and
    the spool drain call this once per chunk, before writing; it costs nothing while
    the suppression list is empty and ids are not hashed."""
    _suppress(batch, settings, report)
    pseudonymise(batch, settings)


def _suppress(batch: Batch, settings: Settings, report: LoadReport) -> None:
    hashes, key = suppressed_hashes(settings)
    if not hashes or key is None:
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    from .loader import MAX_EXAMPLES, Rejection, rejected_id

    memo = _memo_for(hashes, key)

    def hit(value: str | None) -> bool:
        if value is None:
            return False
        if value not in memo:
            memo[value] = hash_id(value, key) in hashes
        return memo[value]

    # (message_id, source, line_number, received_at) of the events to reject.
    doomed_rows: list[tuple[str, str, int | None, datetime]] = []
    # previousId of alias events is in identity_links; person statistics name an object.
    extra: dict[str, str] = {r[0]: r[1] for r in batch.rows.get("identity_links", ())}
    extra |= {r[0]: r[6] for r in batch.rows.get("statistics", ()) if r[5] in PERSON_OBJECT_TYPES}
    for r in batch.rows.get("events", ()):
        if hit(r[4]) or hit(r[3]) or hit(extra.get(r[0])):
            doomed_rows.append((r[0], r[5], r[6], r[8]))
    # The vectorised rows: hash each distinct id once, then select the rows in Arrow.
    for part in batch.arrow.get("events", ()):
        ids = pc.unique(
            pa.chunked_array(
                [*part.column("user_id").chunks, *part.column("anonymous_id").chunks], pa.string()
            )
        )
        found = [v for v in ids.to_pylist() if hit(v)]
        if not found:
            continue
        value_set = pa.array(found, pa.string())
        mask = pc.or_kleene(
            pc.is_in(part.column("user_id"), value_set=value_set),
            pc.is_in(part.column("anonymous_id"), value_set=value_set),
        )
        chosen = part.filter(pc.fill_null(mask, False))
        doomed_rows += zip(
            *(
                chosen.column(n).to_pylist()
                for n in ("message_id", "source", "line_number", "received_at")
            ),
            strict=True,
        )

    # Lines rejected for another reason that name a forgotten id keep no payload either.
    for index, row in enumerate(batch.rejected):
        if row[4] != SUPPRESSED_REASON and _names_suppressed(row[3], hit):
            batch.rejected[index] = (
                rejected_id(row[1], row[2], ""),
                row[1],
                row[2],
                "",
                SUPPRESSED_REASON,
                row[5],
            )
    doomed = {row[0] for row in doomed_rows}
    if not doomed:
        return
    for name, rows in batch.rows.items():
        batch.rows[name] = [r for r in rows if r[0] not in doomed]
    value_set = pa.array(sorted(doomed), pa.string())
    for name, parts in batch.arrow.items():
        batch.arrow[name] = [
            p.filter(pc.invert(pc.is_in(p.column(0), value_set=value_set))) for p in parts
        ]
    batch.message_ids -= doomed
    for _mid, source, line_number, received_at in doomed_rows:
        # The payload is not kept: it is the forgotten person's data.
        batch.rejected.append(
            (
                rejected_id(source, line_number, ""),
                source,
                line_number,
                "",
                SUPPRESSED_REASON,
                received_at,
            )
        )
        report.rejected += 1
        if len(report.rejections) < MAX_EXAMPLES:
            report.rejections.append(Rejection(source, line_number, SUPPRESSED_REASON))


# -- hashing ids at ingestion ----------------------------------------------------

HASH_ENV = "TRACKHOUSE_HASH_IDS"
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# The id fields of a payload (a Segment event or a spooled API call) that are hashed.
PAYLOAD_ID_FIELDS = ("userId", "anonymousId", "previousId", "user_id", "anonymous_id")
# The id columns of each raw table (statistics.object_id: only for PERSON_OBJECT_TYPES).
HASHED_COLUMNS = {
    "events": ("anonymous_id", "user_id"),
    "activity": ("user_id",),
    "touchpoints": ("anonymous_id", "user_id"),
    "conversion_events": ("anonymous_id", "user_id"),
    "identity_links": ("anonymous_id", "user_id"),
    "users": ("user_id",),
    "accounts": ("user_id",),
}
_NOT_KEPT = (
    " (the line is not kept: ids are hashed at ingestion and it is not a JSON object "
    "whose ids could be hashed)"
)
_hashing_cache: dict[tuple[str, ...], tuple[float, bytes | None]] = {}


def _hash_requested() -> bool | None:
    """TRACKHOUSE_HASH_IDS: True (1/true/yes/on), False (0/false/no/off), None (unset)."""
    value = os.environ.get(HASH_ENV, "").strip().lower()
    if not value:
        return None
    if value in _ON or value in _OFF:
        return value in _ON
    raise ConfigError(
        f"{HASH_ENV} is {value!r}; set it to 1 to hash user and anonymous ids at ingestion, "
        "or unset it"
    )


def _configured_key() -> bytes | None:
    configured = os.environ.get(KEY_ENV)
    return hashlib.sha256(configured.encode()).digest() if configured else None


def _check_key(recorded: str, key: bytes | None, since: Any) -> bytes:
    """The key, when it is the one the warehouse's ids were hashed with."""
    if key is not None and _key_id(key) == recorded:
        return key
    current = _key_id(key) if key is not None else "none (no key is set or stored)"
    raise ConfigError(
        f"this warehouse's ids are hashed with key {recorded} (since {since}), but the "
        f"current key is {current}; set {KEY_ENV} back to the key the ids were hashed with "
        "(or unset it when the key is the one stored in the warehouse). A load with another "
        "key would store the same person under another id (docs/privacy.md, hashing ids)"
    )


def hashing_key(settings: Settings) -> bytes | None:
    """The key ids are hashed with at ingestion, None when they are stored as sent.

    Configured once: the first load with TRACKHOUSE_HASH_IDS=1 into a warehouse that
    has no events yet records the key's id (table `id_hashing`); from then on every
    load hashes with that key, whatever the variable says, and refuses another key
    (or TRACKHOUSE_HASH_IDS=0). Read at most every SUPPRESSION_CACHE_SECONDS."""
    requested = _hash_requested()
    cache_key = (
        settings.sqlalchemy_url,
        settings.raw_schema,
        str(requested),
        os.environ.get(KEY_ENV, ""),
    )
    now = time.monotonic()
    with _cache_lock:
        cached = _hashing_cache.get(cache_key)
        if cached and now - cached[0] < SUPPRESSION_CACHE_SECONDS:
            return cached[1]
    ensure_schema(settings)
    schema = settings.raw_schema.replace('"', '""')
    with raw_connection(settings) as conn:
        recorded = conn.execute(
            f'select key_id, enabled_at from "{schema}".id_hashing order by enabled_at'
        ).fetchall()
        stored = conn.execute(
            f'select key_hex from "{schema}".privacy_key order by created_at'
        ).fetchall()
        if not settings.is_duckdb:
            conn.rollback()
    if recorded:
        if requested is False:
            raise ConfigError(
                f"{HASH_ENV}=0, but this warehouse's ids have been hashed since "
                f"{recorded[0][1]} (key {recorded[0][0]}): hashing is configured once, for "
                f"every load; unset {HASH_ENV}, or load clear ids into another warehouse"
            )
        key: bytes | None = _configured_key() or (bytes.fromhex(stored[0][0]) if stored else None)
        key = _check_key(recorded[0][0], key, recorded[0][1])
    elif requested:
        key = enable_id_hashing(settings)
    else:
        key = None
    with _cache_lock:
        _hashing_cache[cache_key] = (now, key)
    return key


def enable_id_hashing(settings: Settings | None = None) -> bytes:
    """Turn hashing of ids at ingestion on for a warehouse that has no events yet
    (what the first load with TRACKHOUSE_HASH_IDS=1 does); returns the key. Idempotent
    with the same key; refuses a warehouse that already holds clear ids."""
    settings = settings or load_settings()
    ensure_schema(settings)
    table = _t(id_hashing, settings)
    with _begin(settings) as conn:
        recorded = conn.execute(
            sa.select(table.c.key_id, table.c.enabled_at).order_by(table.c.enabled_at)
        ).first()
        key = _configured_key() or privacy_key(settings, conn)
        if recorded is not None:
            return _check_key(recorded[0], key, recorded[1])
        ledger = _t(events, settings)
        held = conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one()
        if held:
            raise ConfigError(
                f"{HASH_ENV}=1, but this warehouse already holds {held:,} events with the ids "
                "as sent; hashing is configured once, before the first load: load into a new "
                f"warehouse (or raw schema) with {HASH_ENV}=1, or unset {HASH_ENV}"
            )
        conn.execute(sa.insert(table).values(key_id=_key_id(key), enabled_at=_now()))
    with _cache_lock:
        _hashing_cache.clear()
    return key


def _stored_ids(conn: sa.Connection, settings: Settings, ids: Sequence[str]) -> list[str]:
    """The ids as the raw tables hold them: hashed when the warehouse hashes ids."""
    table = _t(id_hashing, settings)
    recorded = conn.execute(
        sa.select(table.c.key_id, table.c.enabled_at).order_by(table.c.enabled_at)
    ).first()
    if recorded is None:
        return list(ids)
    key = _check_key(recorded[0], _configured_key() or privacy_key(settings, conn), recorded[1])
    return [hash_id(i, key) for i in ids]


def _is_hashing(conn: sa.Connection, settings: Settings) -> bool:
    table = _t(id_hashing, settings)
    return conn.execute(sa.select(table.c.key_id)).first() is not None


def _hash_event(event: Any, h: Any) -> bool:
    """Replace the id fields of a payload object with their hashes; whether it is an object."""
    if not isinstance(event, dict):
        return False
    for name in PAYLOAD_ID_FIELDS:
        value = event.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            event[name] = h(str(value))
    for holder in (event, event.get("properties")):
        if (
            isinstance(holder, dict)
            and holder.get("object_type") in PERSON_OBJECT_TYPES
            and isinstance(holder.get("object_id"), str | int)
            and not isinstance(holder.get("object_id"), bool)
        ):
            holder["object_id"] = h(str(holder["object_id"]))
    return True


def hash_payload(payload: str, h: Any) -> str | None:
    """The payload with its ids hashed (re-serialised JSON), None when it is not a
    JSON object."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not _hash_event(event, h):
        return None
    return orjson.dumps(event).decode()


def pseudonymise(batch: Batch, settings: Settings) -> None:
    """Replace every user and anonymous id of `batch` (and a person statistic's object
    id) by its keyed hash, in the typed rows, the ledger payloads and the rejected
    lines, when the warehouse hashes ids (hashing_key). Runs after the suppression
    check (which reads the ids as sent), on the Python parser's rows and the
    vectorised path's Arrow tables alike."""
    key = hashing_key(settings)
    if key is None:
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    from .schema import columns as column_names

    hashed: dict[str, str] = {}

    def h(value: str | None) -> str | None:
        if value is None:
            return None
        found = hashed.get(value)
        if found is None:
            found = hashed[value] = hash_id(value, key)
        return found

    tables = {t.name: t for t in (events, activity, touchpoints, conversion_events)}
    tables |= {t.name: t for t in (identity_links, users, accounts, statistics)}
    stat_columns = column_names(statistics)
    person = (stat_columns.index("object_type"), stat_columns.index("object_id"))
    for name, rows in batch.rows.items():
        if name not in tables or not rows:
            continue
        names = column_names(tables[name])
        positions = [names.index(c) for c in HASHED_COLUMNS.get(name, ())]
        payload = names.index("payload") if name == "events" else None
        out = []
        for row in rows:
            new = list(row)
            for i in positions:
                new[i] = h(new[i])
            if payload is not None:
                new[payload] = hash_payload(new[payload], h) or "{}"
            if name == "statistics" and new[person[0]] in PERSON_OBJECT_TYPES:
                new[person[1]] = h(new[person[1]])
            out.append(tuple(new))
        batch.rows[name] = out

    def mapped(column: Any) -> Any:
        distinct = [v for v in pc.unique(column).to_pylist() if v is not None]
        if not distinct:
            return column
        index = pc.index_in(column, value_set=pa.array(distinct, pa.string()))
        return pc.take(pa.array([h(v) for v in distinct], pa.string()), index)

    for name, parts in batch.arrow.items():
        wanted = HASHED_COLUMNS.get(name, ())
        new_parts = []
        for part in parts:
            for column in wanted:
                if column in part.column_names:
                    part = part.set_column(
                        part.column_names.index(column), column, mapped(part.column(column))
                    )
            if name == "events" and "payload" in part.column_names:
                texts = [hash_payload(p, h) or "{}" for p in part.column("payload").to_pylist()]
                part = part.set_column(
                    part.column_names.index("payload"), "payload", pa.array(texts, pa.string())
                )
            new_parts.append(part)
        batch.arrow[name] = new_parts

    # Rejected lines: ids hashed in the payload (and in the reason that quotes them);
    # a line that is not a JSON object is not kept. Its id is re-keyed: it was a hash
    # of the line as sent.
    for index, (rid, source, line_number, payload, reason, received_at) in enumerate(
        batch.rejected
    ):
        if payload:
            named: list[str] = []
            new_payload = hash_payload(payload, lambda v, seen=named: seen.append(v) or h(v))
            if new_payload is None:
                new_payload, reason = "", reason + _NOT_KEPT
            for clear in named:  # a reason quotes a value with repr()
                reason = reason.replace(repr(clear), repr(h(clear)))
            payload = new_payload
        batch.rejected[index] = (
            hash_id(rid, key),
            source,
            line_number,
            payload,
            reason,
            received_at,
        )


# -- retention --------------------------------------------------------------------


@dataclass
class PruneReport:
    """What `prune` blanked or removed, per table and what; `dry_run`: only counted."""

    settings: dict[str, int | None]
    rows: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def summary(self) -> str:
        if all(v is None for v in self.settings.values()):
            return (
                "nothing to prune: no retention is set (dbt vars raw_retention_days, "
                "url_query_retention_days, user_agent_retention_days; docs/privacy.md)"
            )
        verb = "would prune" if self.dry_run else "pruned"
        parts = ", ".join(f"{what} {n:,}" for what, n in self.rows.items()) or "nothing"
        kept = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{verb} {self.total:,} rows ({parts}); retention: {kept}"

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "settings": self.settings, "rows": self.rows}


def retention_settings(settings: Settings) -> dict[str, int | None]:
    """The retention vars the last dbt build recorded (trackhouse_settings); all None
    when there was no build or it predates them."""
    from .query import fetch, relation

    try:
        rows = fetch(f"select * from {relation('trackhouse_settings', settings)}", None, settings)
    except Exception:  # no build yet: nothing recorded, keep everything
        rows = []
    row = rows[0] if rows else {}
    return {name: _days(row.get(name), name) for name in RETENTION_VARS}


def _days(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        days = int(value)
    except (TypeError, ValueError):
        days = -1
    if days < 0:
        raise ConfigError(
            f"{name} is {value!r}; give a number of days (0 or more), or null to keep forever"
        )
    return days


def prune(
    settings: Settings | None = None,
    *,
    raw_retention_days: int | None = None,
    url_query_retention_days: int | None = None,
    user_agent_retention_days: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneReport:
    """Blank what is older than the retention settings (arguments, else the dbt vars of
    the last build; None = keep forever). Age is counted from the event's time
    (`occurred_at`); a rejected line, which may have no valid time, from its receipt.

    - raw_retention_days: the ledger's original payloads become '{}' (the row stays:
      it is the messageId de-duplication key) and rejected lines are deleted;
    - url_query_retention_days: touchpoint URLs keep only the tracking parameters
      (utm_*, click ids) of their query string, no fragment; referrers lose their query
      string and fragment;
    - user_agent_retention_days: touchpoint user agents become null, or the bot pattern
      they match (bot_user_agents), so bot filtering gives the same touchpoints.
    """
    settings = settings or load_settings()
    ensure_schema(settings)
    recorded = retention_settings(settings)
    given = dict(
        zip(
            RETENTION_VARS,
            (raw_retention_days, url_query_retention_days, user_agent_retention_days),
            strict=True,
        )
    )
    chosen = {
        k: _days(given[k], k) if given[k] is not None else recorded[k] for k in RETENTION_VARS
    }
    report = PruneReport(settings=chosen, dry_run=dry_run)
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)

    def cutoff(name: str) -> datetime | None:
        days = chosen[name]
        return None if days is None else now - timedelta(days=days)

    bots = _bot_patterns(settings) if chosen["user_agent_retention_days"] is not None else []
    if (before := cutoff("url_query_retention_days")) is not None:
        report.rows["urls trimmed"] = _rewrite(
            settings, before, dry_run, {"url": _trim_url, "referrer": _trim_referrer}
        )
    if (before := cutoff("user_agent_retention_days")) is not None:
        report.rows["user agents blanked"] = _rewrite(
            settings, before, dry_run, {"user_agent": lambda ua: _bot_pattern(ua, bots)}
        )
    with _begin(settings) as conn:
        if (before := cutoff("raw_retention_days")) is not None:
            ledger = _t(events, settings)
            old = sa.and_(ledger.c.occurred_at < before, ledger.c.payload != "{}")
            report.rows["payloads blanked"] = _apply(
                conn, sa.update(ledger).where(old).values(payload="{}"), ledger, old, dry_run
            )
            table = _t(rejected, settings)
            old = table.c.received_at < before
            report.rows["rejected deleted"] = _apply(
                conn, sa.delete(table).where(old), table, old, dry_run
            )
    return report


def _apply(conn: sa.Connection, statement: Any, table: sa.Table, where: Any, dry_run: bool) -> int:
    if dry_run:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
        )
    return int(conn.execute(statement).rowcount)


def _rewrite(settings: Settings, before: datetime, dry_run: bool, columns: dict[str, Any]) -> int:
    """Rewrite touchpoint columns older than `before` with Python functions, in one
    transaction with one bulk UPDATE (DuckDB: from an Arrow table; PostgreSQL: from a
    COPY-filled temporary table). Returns the number of rows changed.

    The rewritten rows get a load_sequence of their own, recorded in `batches` like a
    load's: the incremental int_touchpoints_cleaned cleans rows written after its last
    build again, so it drops the old URLs as a full refresh would."""
    import pyarrow as pa

    from .writer import next_sequence, record_batch

    names = list(columns)
    schema = settings.raw_schema.replace('"', '""')
    target = f'"{schema}".touchpoints'
    select = (
        f"select event_id, {', '.join(names)} from {target} "
        f"where occurred_at < '{before.isoformat(sep=' ')}' "
        f"and ({' or '.join(f'{n} is not null' for n in names)})"
    )
    assignments = ", ".join(f"{n} = th_prune.{n}" for n in names)

    def update(sequence: int) -> str:
        return (
            f"update {target} set {assignments}, {LOAD_SEQUENCE} = {int(sequence)} "
            f"from th_prune where {target}.event_id = th_prune.event_id"
        )

    with raw_connection(settings) as con:
        if settings.is_duckdb:  # psycopg opens a transaction by itself
            con.execute("begin transaction")
        try:
            found = con.execute(select).fetchall()
            changes = []
            for row in found:
                new = [
                    columns[n](v) if v is not None else None
                    for n, v in zip(names, row[1:], strict=True)
                ]
                if new != list(row[1:]):
                    changes.append((row[0], *new))
            if changes and not dry_run:
                if settings.is_duckdb:
                    cols = list(zip(*changes, strict=True))
                    table = pa.table(
                        {
                            n: pa.array(c, pa.string())
                            for n, c in zip(["event_id", *names], cols, strict=True)
                        }
                    )
                    con.register("th_prune", table)
                    sequence = next_sequence(con, settings.raw_schema, lock=False)
                    con.execute(update(sequence))
                    record_batch(con.execute, settings.raw_schema, sequence, len(changes))
                    con.unregister("th_prune")
                else:
                    cur = con.cursor()
                    cur.execute(
                        "create temp table th_prune (event_id text, "
                        + ", ".join(f"{n} text" for n in names)
                        + ") on commit drop"
                    )
                    with cur.copy(f"copy th_prune (event_id, {', '.join(names)}) from stdin") as cp:
                        for change in changes:
                            cp.write_row(change)
                    sequence = next_sequence(cur, settings.raw_schema, lock=True)
                    cur.execute(update(sequence))
                    record_batch(cur.execute, settings.raw_schema, sequence, len(changes))
        except BaseException:
            con.execute("rollback") if settings.is_duckdb else con.rollback()
            raise
        con.execute("commit") if settings.is_duckdb else con.commit()
    return len(changes)


def _trim_url(url: str) -> str:
    """Keep the tracking parameters (as they were written, in order) and drop the rest
    of the query string and the fragment; the dbt parsing then reads the same values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    kept = [p for p in parts.query.split("&") if p.split("=", 1)[0] in _TRACKING]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def _trim_referrer(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _bot_pattern(user_agent: str, patterns: Sequence[str]) -> str | None:
    lowered = user_agent.lower()
    return next((p for p in patterns if p.lower() in lowered), None)


def _bot_patterns(settings: Settings) -> list[str]:
    """The bot seed as built in the warehouse, else the middleware's copy of it."""
    from .query import fetch, relation

    try:
        rows = fetch(f"select pattern from {relation('bot_user_agents', settings)}", None, settings)
        return [str(r["pattern"]) for r in rows]
    except Exception:  # seeds not built yet
        from .middleware import DEFAULT_BOT_PATTERNS

        return list(DEFAULT_BOT_PATTERNS)


# -- helpers ------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _t(table: sa.Table, settings: Settings) -> sa.Table:
    """The table in the configured raw schema."""
    metadata = _metadata_for(settings.raw_schema)
    found = metadata.tables.get(f"{settings.raw_schema}.{table.name}")
    return found if found is not None else table.to_metadata(metadata, schema=settings.raw_schema)


_metadatas: dict[str, sa.MetaData] = {}


def _metadata_for(schema: str) -> sa.MetaData:
    if schema not in _metadatas:
        _metadatas[schema] = sa.MetaData()
    return _metadatas[schema]


def _begin(settings: Settings) -> Any:
    # waits for the DuckDB file like a load, and takes turns with this process's loads
    return write_transaction(settings)


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
