"""The vectorised path of `trackhouse load` for the bulk of real exports.

Python (`parsing.add_event`) is the definition of what an event means and why it
is rejected. Parsing every line in Python costs ~10 µs; so the loader first
hands a whole chunk of lines (one Arrow array over the file's own bytes) to an
in-memory DuckDB, which recognises, in one query, the `page`, `screen`,
`track`, `identify` and `group` events whose every declared field has
the plain expected shape, and produces their raw rows as Arrow. Every other
line (alias and statistic events, anything unusual, anything invalid) goes to `add_event`,
which accepts it or gives the reason. This path never rejects: it only takes
lines Python would accept, with the rows Python would give. `tests/test_fastpath.py`
and the property test `tests/test_parser_differential.py` check that.

The fields it reads, and the JSON kind each must have, are derived from
`parsing.FIELDS` (the declaration), as are the objects in which a duplicated
key sends a line to Python (which rejects it when the key is one it reads).
DuckDB reads JSON as yyjson does, which is more lenient than orjson (NaN and
Infinity, trailing commas, numbers that overflow to infinity): lines with any
of those are left to Python too, so both paths see the same JSON. A track
event's custom properties are written by orjson from the line, as Python does.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .parsing import MAX_DEPTH, MAX_EVENT_BYTES, OBJECT_PATHS, TRACKING_PARAMETERS, fields_for

# The event types this path takes. Alias events stay in Python: privacy.suppress
# checks their previousId on the Python rows only. Statistics: see _plain.
TYPES = ("page", "screen", "track", "identify", "group")

# The JSON kinds each declared kind may have for the line to be plain. A field's
# kind is its json_type (STRING: VARCHAR; NUMBER: an integer or DOUBLE, money
# only: see _MONEY); a JSON null and a missing key are both absent.
PLAIN_KINDS = {
    "type": ("STRING",),
    "message_id": ("STRING",),
    "timestamp": ("STRING", "NULL"),
    "id": ("STRING", "NULL"),
    "text": ("STRING", "NULL"),
    "object": ("OBJECT", "NULL"),
    "bool": ("BOOLEAN", "NULL"),
    "money": ("NUMBER", "STRING", "NULL"),
    "currency": ("STRING", "NULL"),
    "any": ("STRING", "NULL"),
}
# A campaign object makes the touchpoint carry its JSON: Python writes that.
OVERRIDES = {"context.campaign": ("NULL",)}
FIELDS = {t: fields_for(t) for t in TYPES}
# Every path any of these types reads, once, in a stable order.
PATHS: tuple[str, ...] = tuple(dict.fromkeys(f.path for t in TYPES for f in FIELDS[t]))
_KIND = {f.path: f.kind for t in TYPES for f in FIELDS[t]}
# Objects: their kind comes from json_type. Duplicated keys are looked for in the
# objects that hold a declared field of the type (Python rejects a declared key
# written twice in its object; this path leaves any duplicate in them to Python).
OBJECTS = tuple(p for p in OBJECT_PATHS if not p or p in PATHS)
HOLDERS = {t: {".".join(f.keys[:-1]) for f in FIELDS[t]} for t in TYPES}
_HOLDERS = tuple(p for p in OBJECTS if any(p in HOLDERS[t] for t in TYPES))
_OBJECT_KEYS = ["$" + (f".{p}" if p else "") for p in _HOLDERS]
_TRACK_DECLARED = frozenset(f.path for f in FIELDS["track"])

# Plain ISO 8601 (years 0001-9999) with a valid-looking time and an explicit
# offset; anything else (other ISO forms, leap seconds, no offset) is left to
# the Python parser. RE2's `$` matches only at the end of the text; `\z` says so.
_TIMESTAMP = (
    r"^(000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})-\d{2}-\d{2}"
    r"T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)\z"
)
_TRACKING = "(^|&)(" + "|".join(TRACKING_PARAMETERS) + r")(=|&|\z)"
# A query-string name with an escape or '+' would decode to something else: Python decides.
_ENCODED_NAME = r"(^|&)[^=&]*[%+][^=&]*(=|&|\z)"
# What yyjson reads and orjson refuses: NaN/Infinity and numbers that overflow a
# double (as values: after ':', ',' or '['), trailing commas. False positives
# (the same text inside a string) only cost speed; a digit run followed by an
# exponent inside a string (a user agent's "Mobile/15E148") does not count. A
# number overflows only with a 3-digit exponent or 100+ digits. One pattern per
# character a value follows: RE2 skips to a pattern's first literal byte, so three
# such searches cost ~40% of one that starts with the class [:,[] (0.5 against
# 1.3 µs a line, bench/notes/load.md).
_LENIENT_VALUE = r"[+-]?(?i:nan|inf)|-?[\d.]+[eE][+-]?\d{3}|-?[\d.]*\d{100}"
_LENIENT_JSON = (
    f":\\s*({_LENIENT_VALUE})",
    f",\\s*({_LENIENT_VALUE}|[}}\\]])",
    f"\\[\\s*({_LENIENT_VALUE})",
)
# A plain money value as DuckDB renders it (a JSON number or a numeric string):
# at most 14 integer digits and 6 decimals, so it is exact, in range, and the
# rounding to 6 places Python does changes nothing.
_MONEY = r"^-?\d{1,14}(\.\d{1,6})?\z"


def _struct() -> str:
    """The json_transform type: every declared field as text (a string's value, a
    number as DuckDB renders it, an object's JSON), objects nested (an object no
    field is read from, the campaign, is a leaf)."""
    root: dict = {}
    for path in PATHS:
        holder = root
        *parents, leaf = path.split(".")
        for key in parents:
            if not isinstance(holder.get(key), dict):
                holder[key] = {}
            holder = holder[key]
        if leaf not in holder:
            holder[leaf] = "VARCHAR"
    return json.dumps(root)


_STRUCT = _struct()


def _k(path: str) -> str:
    """SQL: the field's json_type (NULL when absent)."""
    return f"kinds[{PATHS.index(path) + 1}]"


def _j(path: str) -> str:
    """SQL: the field's text (NULL when absent or null)."""
    return "j" + "".join(f"['{key}']" for key in path.split("."))


def _s(path: str) -> str:
    """SQL: the field's string value (NULL unless it is a JSON string)."""
    return f"(case when {_k(path)} = 'VARCHAR' then {_j(path)} end)"


def _u(path: str) -> str:
    """SQL: a timestamp field's value as naive UTC (th_utc)."""
    return f"th_utc({_s(path)})"


_JSON_PATHS = [f"$.{path}" for path in PATHS]


def _is(path: str, kinds: tuple[str, ...]) -> str:
    k = _k(path)
    test = {
        "STRING": f"{k} = 'VARCHAR'",
        "BOOLEAN": f"{k} = 'BOOLEAN'",
        "NUMBER": f"({k} in ('UBIGINT', 'BIGINT', 'DOUBLE')"
        f" and regexp_matches({_j(path)}, '{_MONEY}'))",
        "OBJECT": f"{k} = 'OBJECT'",
        "NULL": f"({k} is null or {k} = 'NULL')",
    }
    return "(" + " or ".join(test[kind] for kind in kinds) + ")"


def _plain(event_type: str) -> str:
    """SQL: every field the type declares has a plain JSON kind."""
    conds = []
    for f in FIELDS[event_type]:
        kinds = OVERRIDES.get(f.path, PLAIN_KINDS.get(f.kind))
        if kinds is None:
            return "false"  # a kind this path cannot judge (statistics)
        conds.append(_is(f.path, kinds))
    return " and ".join(conds)


def _opt_ts(path: str) -> str:
    """SQL: an optional timestamp field is absent, empty, or plain and valid."""
    v = _s(path)
    return f"({v} is null or {v} = '' or {_ts(path)} is not null)"


def _ts(path: str) -> str:
    """SQL: a timestamp field as naive UTC, NULL when empty or Python would reject it
    (not plain ISO 8601, or out of range once in UTC: years 0001-9999)."""
    u = _u(path)
    return (
        f"case when {u} between timestamp '0001-01-01'"
        f" and timestamp '9999-12-31 23:59:59.999999' then {u} end"
    )


def _money(path: str) -> str:
    """SQL: a money field is absent, or a number or numeric string that is plain."""
    x = _j(path)
    return f"({x} is null or regexp_matches({x}, '{_MONEY}'))"


def _no_duplicates(event_type: str) -> str:
    return " and ".join(
        f"(coalesce(len(object_keys[{i + 1}]), 0) < 2"
        f" or list_unique(object_keys[{i + 1}]) = len(object_keys[{i + 1}]))"
        for i, holder in enumerate(_HOLDERS)
        if holder in HOLDERS[event_type]
    )


_VALID = """occurred_at between timestamp '0001-01-01' and timestamp '9999-12-31 23:59:59.999999'
        and (anonymous_id is not null or user_id is not null)"""


def _typed(types: tuple[str, ...]) -> str:
    """SQL: the common columns of the plain events of `types` (a branch of the query)."""
    plain = " ".join(f"when '{t}' then {_plain(t)} and {_no_duplicates(t)}" for t in types)
    return f"""
    select
        line_number,
        th_row,
        {_s("type")} as event_type,
        {_s("messageId")} as message_id,
        {_u("timestamp")} as occurred_at,
        nullif({_s("anonymousId")}, '') as anonymous_id,
        nullif({_s("userId")}, '') as user_id,
        j,
        kinds
    from th_fields
    where {_s("type")} in {types!r}
        and {_s("messageId")} <> ''
        -- the kinds, and a key twice in an object the event is read from: Python decides
        and case {_s("type")} {plain} end
    """


_OTHER_TYPES = tuple(t for t in TYPES if t != "page")
# First the lines are parsed once into a temporary table (a CTE would let the
# optimizer push filters into it and parse the JSON twice), then judged.
_FIELDS_QUERY = f"""
create or replace temp table th_fields as
with

lines as (
    select line_number, th_row, line from th_chunk
    where strlen(line) <= {MAX_EVENT_BYTES}
        and not contains(line, '\\u0000')
        and strlen(line) - strlen(replace(replace(line, '{{', ''), '[', '')) <= {MAX_DEPTH}
        and left(line, 1) = '{{'
        and json_valid(line)
        and {" and ".join(f"not regexp_matches(line, '{p}')" for p in _LENIENT_JSON)}
),

fields as (
    select
        line_number,
        th_row,
        json_transform(line, '{_STRUCT}') as j,
        json_type(line, {_JSON_PATHS!r}) as kinds,
        json_keys(line, {_OBJECT_KEYS!r}) as object_keys
    from lines
)

select * from fields
"""

_QUERY = f"""
with

page_typed as ({_typed(("page",))}),

other_typed as ({_typed(_OTHER_TYPES)}),

page as (
    select
        *,
        -- Python takes page.url or properties.url: an empty string falls through
        case
            when coalesce({_s("context.page.url")}, '') <> '' then {_s("context.page.url")}
            else {_s("properties.url")}
        end as url,
        case
            when coalesce({_s("context.page.referrer")}, '') <> ''
                then {_s("context.page.referrer")}
            else {_s("properties.referrer")}
        end as referrer
    from page_typed
    where {_VALID}
),

page_rows as (
    select *, regexp_extract(url, '^[^?#]*\\?([^#]*)', 1) as query
    from page
    where not regexp_matches(coalesce(url, ''), '[\\t\\r\\n]|^[\\x00-\\x20]')
),

pages as (
    select
        line_number, th_row, event_type, message_id, occurred_at, anonymous_id, user_id,
        url,
        referrer,
        {_s("context.userAgent")} as user_agent,
        coalesce(url, '') <> ''
            and regexp_matches(coalesce(query, ''), '{_TRACKING}') as is_touchpoint
    from page_rows
    where not regexp_matches(coalesce(query, ''), '{_ENCODED_NAME}')
),

others as (
    select
        line_number, th_row, event_type, message_id, occurred_at, anonymous_id, user_id,
        -- identify
        coalesce(
            {_ts("traits.created_at")},
            {_ts("traits.createdAt")}
        ) as date_joined,
        case when event_type = 'identify' then {_j("traits.is_active")}::boolean end
            as trait_is_active,
        nullif({_s("traits.account_id")}, '') as account_id,
        -- group
        nullif({_s("groupId")}, '') as group_id,
        {_ts("traits.subscription_start")} as subscription_start,
        {_s("traits.name")} as account_name,
        -- track
        {_s("event")} as event,
        cast(
            case
                when {_j("properties.value")} is null then {_j("properties.revenue")}
                else {_j("properties.value")}
            end as decimal(38, 6)
        ) as value,
        upper(nullif({_s("properties.currency")}, '')) as currency,
        coalesce({_j("properties.is_confirmed")}::boolean, true) as is_confirmed,
        coalesce({_j("properties.is_active")}::boolean, true) as is_active,
        coalesce(nullif({_s("properties.conversion_id")}, ''), message_id) as conversion_id,
        {_s("properties.source_object")} as source_object
    from other_typed
    where {_VALID} and case event_type
        when 'screen' then true
        when 'identify' then user_id is not null
            and {_opt_ts("traits.created_at")} and {_opt_ts("traits.createdAt")}
        when 'group' then nullif({_s("groupId")}, '') is not null
            and {_opt_ts("traits.subscription_start")}
        when 'track' then regexp_matches({_s("event")}, '[[:alnum:]_]')
            and (th_allowed is null or list_contains(th_allowed, {_s("event")}))
            and {_money("properties.value")} and {_money("properties.revenue")}
            and (
                {_s("properties.currency")} is null or {_s("properties.currency")} = ''
                or regexp_matches({_s("properties.currency")}, '^[A-Za-z]{{3}}\\z')
            )
        else false
    end
)

select
    line_number, th_row, event_type, message_id, occurred_at, anonymous_id, user_id,
    url, referrer, user_agent, is_touchpoint,
    null::timestamp as date_joined, null::boolean as trait_is_active,
    null::varchar as account_id, null::varchar as group_id,
    null::timestamp as subscription_start, null::varchar as account_name,
    null::varchar as event, null::decimal(38, 6) as value,
    null::varchar as currency, null::boolean as is_confirmed, null::boolean as is_active,
    null::varchar as conversion_id, null::varchar as source_object
from pages
union all by name
select * from others
"""

# Plain ISO 8601 (see _TIMESTAMP) -> naive UTC: DuckDB's own cast reads the offset
# (NULL for a date that does not exist, e.g. 2024-02-30) and the connection's time
# zone is UTC. The regex keeps every other form the cast would accept for Python.
# (It replaced arithmetic on the local part and the offset: the same values, but
# ~50 expressions a use, planned again for every slice: bench/notes/load.md.)
_MACROS = f"""
create or replace macro th_utc(s) as case when regexp_matches(s, '{_TIMESTAMP}') then
    try_cast(s as timestamptz)::timestamp
end
"""


@dataclass
class FastRows:
    """Raw rows of the recognised lines, as Arrow tables per raw table."""

    numbers: pa.Array  # the line numbers taken
    message_ids: pa.Array
    tables: dict[str, pa.Table]

    @property
    def line_numbers(self) -> list[int]:
        return self.numbers.to_pylist()


def chunk_table(line_numbers: list[int], lines: list[str]) -> pa.Table:
    return pa.table(
        {
            "line_number": pa.array(line_numbers, pa.int64()),
            "line": pa.array(lines, pa.large_string()),
        }
    )


# Lines per query of the vectorised path (see FastPath.run_table): the loader's
# default batch. Smaller slices save little of a whole load's peak memory (~60 MiB
# at 25,000, measured) and cost ~10% more CPU (each query is planned again).
SLICE_LINES = 100_000
# Slices judged at once on DuckDB, each on a connection of its own: the judging query
# of one slice runs on one thread, so two use both cores when the writer leaves one
# idle (1M-line export into DuckDB: 18.5 s against 20.9 s, +66 MiB). PostgreSQL's COPY
# and Spark's session want that core: one slice at a time (loader.fast_parallel). A chunk of
# fewer than 2 * MIN_PARALLEL_LINES lines stays one slice (planning ~0.1 s a query).
PARALLEL = 2
MIN_PARALLEL_LINES = 10_000
MEMORY_LIMIT = "256MB"


class FastPath:
    """An in-memory DuckDB that recognises plain events in a chunk of lines."""

    def __init__(self, parallel: int = 1) -> None:
        """`parallel`: slices of a chunk judged at once (see PARALLEL)."""
        self.parallel = max(parallel, 1)
        self.con = duckdb.connect(":memory:")
        self.con.execute("set timezone = 'UTC'")
        # One thread: a slice's queries get nothing from DuckDB's workers (the input is
        # one Arrow batch, the judging runs on one thread), and their scheduling cost
        # ~13% more CPU (bench/notes/load.md). Slices judged at once (`parallel`) each run
        # in their own caller's thread; the writer thread has the other core.
        self.con.execute("set threads = 1")
        self.con.execute("set enable_progress_bar = false")  # stdout is the report's
        # A chunk is at most 64 MiB of lines (loader.CHUNK_BYTES); left to its default
        # (80% of RAM) this database kept ~100 MB more than it needs after the first
        # slices. Over the limit it spills to a directory of its own (made only then),
        # removed on close; a slice of large lines that still does not fit lifts it.
        self._spill = os.path.join(
            tempfile.gettempdir(), f"trackhouse-fastpath-{os.getpid()}-{id(self):x}"
        )
        self.con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
        self._limited = True
        self.con.execute(f"set temp_directory = '{self._spill}'")
        self.con.execute(_MACROS)
        # One connection per slice in flight; temporary tables are per connection.
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle.put(self.con)
        for _ in range(self.parallel - 1):
            cursor = self.con.cursor()
            cursor.execute("set timezone = 'UTC'")
            self._idle.put(cursor)
        self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="trackhouse-fastpath")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown()
        while not self._idle.empty():  # the cursors, then the database's own connection
            con = self._idle.get()
            if con is not self.con:
                con.close()
        self.con.close()
        shutil.rmtree(self._spill, ignore_errors=True)

    def run(
        self,
        line_numbers: list[int],
        lines: list[str],
        *,
        source: str,
        received_at: datetime,
        allowed_events: Any = None,
    ) -> FastRows:
        return self.run_table(
            chunk_table(line_numbers, lines),
            source=source,
            received_at=received_at,
            allowed_events=allowed_events,
        )

    def run_table(
        self,
        chunk: pa.Table,
        *,
        source: str,
        received_at: datetime,
        allowed_events: Any = None,
    ) -> FastRows:
        """`chunk`: line_number (int64) and line (text, without its line break)."""
        allowed = None if allowed_events is None else sorted(allowed_events)
        # Slices of at most SLICE_LINES (the parsed fields of a line take ~3 times its
        # bytes in DuckDB, so a large --batch-size does not grow this working set), and
        # at least `parallel` slices when the chunk is large enough, each judged on a
        # connection of its own (a query over one slice judges on one thread).
        rows = max(chunk.num_rows, 1)
        parts = max(-(-rows // SLICE_LINES), min(self.parallel, rows // MIN_PARALLEL_LINES), 1)
        size = -(-rows // parts)
        pieces = [chunk.slice(start, size) for start in range(0, rows, size)]
        if self.parallel == 1 or len(pieces) == 1:
            found = [self._run_piece(piece, allowed) for piece in pieces]
        else:
            found = list(self._pool.map(lambda piece: self._run_piece(piece, allowed), pieces))
        return _split(pa.concat_tables(found), source, received_at)

    def _run_piece(self, piece: pa.Table, allowed: list[str] | None) -> pa.Table:
        con = self._idle.get()
        try:
            limited = self._limited
            try:
                return self._run_slice(con, piece, allowed)
            except duckdb.OutOfMemoryException:
                if not limited:
                    raise
                with self._lock:  # large lines need more than the limit: lift it
                    if self._limited:
                        con.execute("reset memory_limit")  # a global setting
                        self._limited = False
                return self._run_slice(con, piece, allowed)
        finally:
            self._idle.put(con)

    @staticmethod
    def _run_slice(con: Any, piece: pa.Table, allowed: list[str] | None) -> pa.Table:
        # DuckDB reads the lines but hands back each taken line's row in the slice,
        # not the line: the line (the payload) is taken from the slice's own array,
        # so DuckDB neither stores the lines again nor copies them back out.
        rows = pa.array(range(piece.num_rows), pa.int32())
        con.register("th_chunk", piece.append_column("th_row", rows))
        try:
            con.execute(_FIELDS_QUERY)
            found = con.sql(
                f"select * from ({_QUERY.replace('th_allowed', '$allowed::varchar[]')})",
                params={"allowed": allowed},
            ).to_arrow_table()
        finally:
            con.unregister("th_chunk")
            con.execute("drop table if exists th_fields")
        line = pc.take(piece.column("line"), found.column("th_row"))
        return found.set_column(found.schema.get_field_index("th_row"), "line", line)


def _custom(lines: list[str]) -> list[str | None]:
    """A track event's custom properties as Python writes them (orjson, from the line)."""
    out: list[str | None] = []
    for line in lines:
        properties = orjson.loads(line).get("properties") or {}
        custom = {k: v for k, v in properties.items() if f"properties.{k}" not in _TRACK_DECLARED}
        out.append(orjson.dumps(custom).decode() if custom else None)
    return out


def _split(found: pa.Table, source: str, received_at: datetime) -> FastRows:
    """The rows of each raw table, in the raw tables' column order."""
    n = found.num_rows
    col = found.column
    received = pa.repeat(pa.scalar(received_at, pa.timestamp("us")), n)
    kind = col("event_type")

    def rows(mask: Any, columns: dict[str, Any]) -> pa.Table:
        table = pa.table({**columns, "received_at": received, "line_number": col("line_number")})
        return table if mask is None else table.filter(mask)

    tables: dict[str, pa.Table] = {
        "events": pa.table(
            {
                "message_id": col("message_id"),
                "event_type": kind,
                "occurred_at": col("occurred_at"),
                "anonymous_id": col("anonymous_id"),
                "user_id": col("user_id"),
                "source": pa.repeat(pa.scalar(source, pa.string()), n),
                "line_number": col("line_number"),
                "payload": col("line"),
                "received_at": received,
            }
        ),
        "activity": rows(
            pc.is_valid(col("user_id")),
            {
                "event_id": col("message_id"),
                "user_id": col("user_id"),
                "occurred_at": col("occurred_at"),
            },
        ),
    }
    present = set(pc.unique(kind).to_pylist()) if n else set()
    if "page" in present:
        tables["touchpoints"] = rows(
            pc.fill_null(col("is_touchpoint"), False),
            {
                "event_id": col("message_id"),
                "anonymous_id": col("anonymous_id"),
                "user_id": col("user_id"),
                "occurred_at": col("occurred_at"),
                "url": col("url"),
                "referrer": col("referrer"),
                "user_agent": col("user_agent"),
                "campaign": pa.nulls(n, pa.string()),
            },
        )
    if "identify" in present:
        tables["identity_links"] = rows(
            pc.and_(pc.equal(kind, "identify"), pc.is_valid(col("anonymous_id"))),
            {
                "event_id": col("message_id"),
                "anonymous_id": col("anonymous_id"),
                "user_id": col("user_id"),
                "link_type": col("event_type"),
                "occurred_at": col("occurred_at"),
            },
        )
    if "identify" in present:
        tables["users"] = rows(
            pc.equal(kind, "identify"),
            {
                "event_id": col("message_id"),
                "user_id": col("user_id"),
                "date_joined": col("date_joined"),
                "is_active": col("trait_is_active"),
                "account_id": col("account_id"),
                "occurred_at": col("occurred_at"),
            },
        )
    if "group" in present:
        tables["accounts"] = rows(
            pc.equal(kind, "group"),
            {
                "event_id": col("message_id"),
                "account_id": col("group_id"),
                "user_id": col("user_id"),
                "subscription_start": col("subscription_start"),
                "name": col("account_name"),
                "occurred_at": col("occurred_at"),
            },
        )
    if "track" in present:
        track = found.filter(pc.equal(kind, "track"))
        t = track.column
        tables["conversion_events"] = pa.table(
            {
                "event_id": t("message_id"),
                "conversion_id": t("conversion_id"),
                "event": t("event"),
                "anonymous_id": t("anonymous_id"),
                "user_id": t("user_id"),
                "occurred_at": t("occurred_at"),
                "value": t("value"),
                "currency": t("currency"),
                "is_confirmed": t("is_confirmed"),
                "is_active": t("is_active"),
                "custom_data": pa.array(_custom(t("line").to_pylist()), pa.string()),
                "source_object": t("source_object"),
                "received_at": pa.repeat(pa.scalar(received_at, pa.timestamp("us")), len(track)),
                "line_number": t("line_number"),
            }
        )
    return FastRows(
        numbers=col("line_number").combine_chunks(),
        message_ids=col("message_id").combine_chunks().cast(pa.string()),
        tables=tables,
    )
