"""The vectorised path of `trackhouse load` for the bulk of real exports: page views.

Python (`parsing.add_event`) is the definition of what an event means and why it
is rejected. Parsing every line in Python costs ~10 µs; so the loader first
hands a whole chunk of lines to an in-memory DuckDB, which recognises, in one
query, the `page` events whose every interpreted field has the plain expected
shape, and produces their raw rows as Arrow. Every other line (other types,
anything unusual, anything invalid) goes to `add_event`, which accepts it or
gives the reason. `tests/test_fastpath.py` checks that both paths give the same
rows for the same lines.

Known difference, by design: this path reads JSON as DuckDB does (RFC 8259 via
yyjson). For an object with a duplicated key it takes the first value (orjson
the last), and it accepts numbers beyond 64 bits or 1e400 in properties it does
not interpret, which orjson refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .parsing import MAX_EVENT_BYTES, TRACKING_PARAMETERS

# Plain ISO 8601 with a valid-looking time and an explicit offset; anything else
# (other ISO forms, leap seconds, no offset) is left to the Python parser.
_TIMESTAMP = (
    r"^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_TRACKING = "(^|&)(" + "|".join(TRACKING_PARAMETERS) + ")(=|&|$)"
# A query-string name with an escape or '+' would decode to something else: Python decides.
_ENCODED_NAME = r"(^|&)[^=&]*[%+][^=&]*(=|&|$)"

# The fields this path reads, and the JSON kind each must have for the line to
# be "plain" (anything else goes to the Python parser, which decides).
_FIELDS = [
    ("$.type", "VARCHAR"),
    ("$.messageId", "VARCHAR"),
    ("$.timestamp", "VARCHAR"),
    ("$.anonymousId", "(VARCHAR|NULL)"),
    ("$.userId", "(VARCHAR|NULL)"),
    ("$.context", "(OBJECT|NULL)"),
    ("$.context.page", "(OBJECT|NULL)"),
    ("$.properties", "(OBJECT|NULL)"),
    ("$.traits", "(OBJECT|NULL)"),
    ("$.context.page.url", "(VARCHAR|NULL)"),
    ("$.properties.url", "(VARCHAR|NULL)"),
    ("$.context.page.referrer", "(VARCHAR|NULL)"),
    ("$.properties.referrer", "(VARCHAR|NULL)"),
    ("$.context.userAgent", "(VARCHAR|NULL)"),
    ("$.context.campaign", "NULL"),
]
_PATHS = [path for path, _ in _FIELDS]
# json_type over all paths, cast to text, matched once: far cheaper than one
# json_type per field. A missing path reads NULL, a JSON null 'NULL': both absent.
_KINDS = r"^\[" + ", ".join(k.replace("NULL", r"\x27?NULL\x27?") for _, k in _FIELDS) + r"\]$"
_STRUCT = (
    '{"type": "VARCHAR", "messageId": "VARCHAR", "timestamp": "VARCHAR", '
    '"anonymousId": "VARCHAR", "userId": "VARCHAR", '
    '"context": {"page": {"url": "VARCHAR", "referrer": "VARCHAR"}, "userAgent": "VARCHAR"}, '
    '"properties": {"url": "VARCHAR", "referrer": "VARCHAR"}}'
)

_QUERY = f"""
with

lines as (
    select line_number, line from th_chunk
    where length(line) <= {MAX_EVENT_BYTES}
        and not contains(line, '\\u0000')
        and json_valid(line)
        and left(ltrim(line), 1) = '{{'
),

fields as (
    select
        line_number,
        line,
        cast(json_type(line, {_PATHS!r}) as varchar) as kinds,
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
where occurred_at is not null
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
