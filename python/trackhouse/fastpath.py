"""The vectorised path of `trackhouse load` for the bulk of real exports: page views.

Python (`parsing.add_event`) is the definition of what an event means and why it
is rejected. Parsing every line in Python costs ~10 µs; so the loader first
hands a whole chunk of lines to an in-memory DuckDB, which recognises, in one
query, the `page` events whose every declared field has the plain expected
shape, and produces their raw rows as Arrow. Every other line (other types,
anything unusual, anything invalid) goes to `add_event`, which accepts it or
gives the reason. This path never rejects: it only takes lines Python would
accept, with the rows Python would give. `tests/test_fastpath.py` and the
property test `tests/test_parser_differential.py` check that.

The fields it reads, and the JSON kind each must have, are derived from
`parsing.FIELDS` (the declaration of the `page` fields), as are the objects in
which a duplicated key sends a line to Python (which rejects it when the key is
one it reads). DuckDB reads JSON as yyjson does, which is more lenient than
orjson (NaN and Infinity, trailing commas, numbers that overflow to infinity):
lines with any of those are left to Python too, so both paths see the same JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .parsing import MAX_DEPTH, MAX_EVENT_BYTES, OBJECT_PATHS, TRACKING_PARAMETERS, fields_for

# The JSON kinds (json_type) each declared kind may have for the line to be plain.
PLAIN_KINDS = {
    "type": "VARCHAR",
    "message_id": "VARCHAR",
    "timestamp": "VARCHAR",
    "id": "(VARCHAR|NULL)",
    "text": "(VARCHAR|NULL)",
    "object": "(OBJECT|NULL)",
}
# A campaign object makes the touchpoint carry its JSON: Python writes that.
OVERRIDES = {"context.campaign": "NULL"}
PAGE_FIELDS = fields_for("page")
_FIELDS = [(f.json_path, OVERRIDES.get(f.path, PLAIN_KINDS[f.kind])) for f in PAGE_FIELDS]
_PATHS = [path for path, _ in _FIELDS]
_OBJECTS = [
    "$" + (f".{p}" if p else "")
    for p in OBJECT_PATHS
    if not p or p in {f.path for f in PAGE_FIELDS}
]

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
# What yyjson reads and orjson refuses: NaN/Infinity, trailing commas, numbers
# that overflow a double. False positives (inside strings) only cost speed.
_LENIENT_JSON = r"[:,\[]\s*[+-]?(?i:nan|inf)|,\s*[}\]]|\d[eE][+-]?\d{3}|\d{300}"
# json_type over all paths, cast to text, matched once: far cheaper than one
# json_type per field. A missing path reads NULL, a JSON null 'NULL': both absent.
_KINDS = r"^\[" + ", ".join(k.replace("NULL", r"\x27?NULL\x27?") for _, k in _FIELDS) + r"\]\z"
# The struct json_transform reads: every declared scalar field, as text.
STRUCT_PATHS = tuple(f.path for f in PAGE_FIELDS if f.kind != "object")


def _struct(paths: tuple[str, ...]) -> str:
    root: dict = {}
    for path in paths:
        *parents, leaf = path.split(".")
        holder = root
        for key in parents:
            holder = holder.setdefault(key, {})
        holder[leaf] = "VARCHAR"
    return json.dumps(root)


_STRUCT = _struct(STRUCT_PATHS)

_QUERY = f"""
with

lines as (
    select line_number, line from th_chunk
    where strlen(line) <= {MAX_EVENT_BYTES}
        and not contains(line, '\\u0000')
        and strlen(line) - strlen(replace(replace(line, '{{', ''), '[', '')) <= {MAX_DEPTH}
        and not regexp_matches(line, '{_LENIENT_JSON}')
        and json_valid(line)
        and left(ltrim(line), 1) = '{{'
),

fields as (
    select
        line_number,
        line,
        cast(json_type(line, {_PATHS!r}) as varchar) as kinds,
        json_keys(line, {_OBJECTS!r}) as object_keys,
        json_transform(line, '{_STRUCT}') as s
    from lines
),

typed as (
    select
        line_number,
        line,
        s.messageId as message_id,
        s.timestamp as ts,
        nullif(s.anonymousId, '') as anonymous_id,
        nullif(s.userId, '') as user_id,
        -- Python takes page.url or properties.url: an empty string falls through
        case
            when coalesce(s.context.page.url, '') <> '' then s.context.page.url
            else s.properties.url
        end as url,
        case
            when coalesce(s.context.page.referrer, '') <> '' then s.context.page.referrer
            else s.properties.referrer
        end as referrer,
        s.context.userAgent as user_agent
    from fields
    where s.type = 'page'
        and regexp_matches(kinds, '{_KINDS}')
        -- a key twice in an object the event is read from: Python decides
        and len(list_filter(object_keys, lambda k: len(list_distinct(k)) < len(k))) = 0
),

accepted as (
    select
        *,
        cast(try_cast(ts as timestamptz) as timestamp) as occurred_at,
        regexp_extract(url, '^[^?#]*\\?([^#]*)', 1) as query
    from typed
    where message_id <> ''
        and regexp_matches(ts, '{_TIMESTAMP}')
        and (anonymous_id is not null or user_id is not null)
        and not regexp_matches(coalesce(url, ''), '[\\t\\r\\n]|^[\\x00-\\x20]')
)

select
    *,
    coalesce(url, '') <> ''
        and regexp_matches(coalesce(query, ''), '{_TRACKING}') as is_touchpoint
from accepted
where occurred_at between timestamp '0001-01-01' and timestamp '9999-12-31 23:59:59.999999'
    and not regexp_matches(coalesce(query, ''), '{_ENCODED_NAME}')
"""


@dataclass
class FastRows:
    """Raw rows of the recognised lines, as Arrow tables per raw table."""

    line_numbers: list[int]
    message_ids: list[str]
    tables: dict[str, pa.Table]


class FastPath:
    """An in-memory DuckDB that recognises plain page views in a chunk of lines."""

    def __init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("set timezone = 'UTC'")
        # One core parses while the writer thread uses the other (see loader.load_stream).
        self.con.execute("set threads = 2")

    def close(self) -> None:
        self.con.close()

    def run(
        self,
        line_numbers: list[int],
        lines: list[str],
        *,
        source: str,
        received_at: datetime,
    ) -> FastRows:
        chunk = pa.table(
            {
                "line_number": pa.array(line_numbers, pa.int64()),
                "line": pa.array(lines, pa.string()),
            }
        )
        self.con.register("th_chunk", chunk)
        try:
            found = self.con.sql(_QUERY).to_arrow_table()
        finally:
            self.con.unregister("th_chunk")
        n = found.num_rows
        received = (
            pa.array([received_at] * n, pa.timestamp("us"))
            if n
            else pa.array([], pa.timestamp("us"))
        )
        col = found.column
        events = pa.table(
            {
                "message_id": col("message_id"),
                "event_type": pa.array(["page"] * n, pa.string()),
                "occurred_at": col("occurred_at"),
                "anonymous_id": col("anonymous_id"),
                "user_id": col("user_id"),
                "source": pa.array([source] * n, pa.string()),
                "line_number": col("line_number"),
                "payload": col("line"),
                "received_at": received,
            }
        )
        activity = pa.table(
            {
                "event_id": col("message_id"),
                "user_id": col("user_id"),
                "occurred_at": col("occurred_at"),
                "received_at": received,
                "line_number": col("line_number"),
            }
        ).filter(pc.is_valid(col("user_id")))
        touchpoints = pa.table(
            {
                "event_id": col("message_id"),
                "anonymous_id": col("anonymous_id"),
                "user_id": col("user_id"),
                "occurred_at": col("occurred_at"),
                "url": col("url"),
                "referrer": col("referrer"),
                "user_agent": col("user_agent"),
                "campaign": pa.nulls(n, pa.string()),
                "received_at": received,
                "line_number": col("line_number"),
            }
        ).filter(col("is_touchpoint"))
        return FastRows(
            line_numbers=col("line_number").to_pylist(),
            message_ids=col("message_id").to_pylist(),
            tables={"events": events, "activity": activity, "touchpoints": touchpoints},
        )
