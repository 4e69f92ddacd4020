"""Property: the vectorised path and the Python parser agree on every line.

Random and adversarial NDJSON lines of every type the vectorised path takes
(page, screen, track, identify, group) and of others (alias, statistic),
with duplicated keys, escaped keys, NaN, trailing commas, huge numbers, NUL,
deep nesting, odd timestamps (year 0000, 2024-02-30, no offset), odd money and
currency values, odd URLs, non-UTF-8 bytes, lines over the size limit in bytes
but not in characters, CRLF line ends)
are loaded twice into the same warehouse, into two raw schemas: once with the
vectorised path, once with every line parsed in Python. The reports and every
raw row written (rejections included) must be identical, on DuckDB and on
PostgreSQL. Bounded: a fixed seed and a fixed number of examples.
"""

from __future__ import annotations

import dataclasses
import os

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from trackhouse.engine import ensure_schema, raw_connection
from trackhouse.loader import load_files
from trackhouse.schema import DATA_TABLES

EXAMPLES = int(os.environ.get("TRACKHOUSE_PROPERTY_EXAMPLES", "30"))

TIMESTAMPS = st.sampled_from(
    [
        "2024-05-01T10:00:00Z",
        "2024-05-01T12:00:00.5+02:00",
        "2024-05-01T10:00:00.123456-05:30",
        "2024-05-01T10:00:00",
        "2024-02-30T10:00:00Z",
        "2024-05-01T23:59:60Z",
        "2024-05-01 10:00:00+00:00",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59Z",
        "2024-05-01T10:00:00Z\n",
        "20240501T100000Z",
        "",
    ]
) | st.datetimes(
    min_value=__import__("datetime").datetime(1, 1, 2),
    max_value=__import__("datetime").datetime(9999, 12, 30),
    timezones=st.timezones(),
).map(lambda d: d.isoformat())

URLS = st.sampled_from(
    [
        "https://shop.example/landing?utm_source=google&utm_campaign=spring%20sale",
        "https://shop.example/?gclid=abc#top",
        "https://shop.example/#?utm_source=x",
        "https://shop.example/?a=1?utm_source=x",
        "https://shop.example/?utm_sourcex=1",
        "https://shop.example/?x=1&utm_term",
        "https://shop.example/?utm%5Fsource=enc",
        "https://shop.example/?utm+source=x&utm_medium=y",
        "http://[::1/?utm_source=bracket",
        "\thttps://shop.example/?utm_source=tab",
        " https://shop.example/?utm_source=space",
        "https://shop.example/?utm_so\nurce=x",
        "https://shop.example/no-tracking",
        "",
    ]
) | st.text(max_size=30).map(lambda s: "https://e.example/?" + s)

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
INTS = st.integers(-(2**63), 2**63 - 1)  # what orjson writes
IDS = st.sampled_from(["m1", "m2", "m3", "", "nul\x00id"]) | TEXT
ANY_JSON = st.recursive(
    st.none() | st.booleans() | INTS | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
MAYBE_STR = st.none() | TEXT | ANY_JSON


MONEY = st.sampled_from([19.99, 5, 0, -3.5, "12.50", "", "abc", 1e20, 0.1 + 0.2]) | (
    st.floats(allow_nan=False, allow_infinity=False) | INTS | TEXT
)


def mix(plain: st.SearchStrategy, odd: st.SearchStrategy, odds: int = 8) -> st.SearchStrategy:
    """`plain`, or `odd` one time in `odds`."""
    return st.integers(0, odds - 1).flatmap(lambda i: odd if i == 0 else plain)


@st.composite
def events(draw: st.DrawFn) -> dict:
    """Mostly plain events of the types the vectorised path takes, each field odd
    now and then; other types (alias, statistic) and odd types now and then."""

    def pick(plain, odd, odds: int = 8):
        return draw(odd) if draw(st.integers(0, odds - 1)) == 0 else draw(plain)

    kind = pick(
        st.sampled_from(["page", "page", "page", "track", "identify", "group", "screen"]),
        st.sampled_from(["alias", "statistic", "Page", "screen"]),
    )
    event: dict = {
        "type": kind,
        "messageId": pick(st.sampled_from(["m1", "m2", "m3", "m4"]), IDS | INTS),
        "timestamp": pick(st.just("2024-05-01T10:00:00Z"), TIMESTAMPS | INTS, odds=3),
    }
    if draw(st.integers(0, 3)):
        event["anonymousId"] = pick(st.sampled_from(["anon-1", "anon-2"]), MAYBE_STR)
    if draw(st.booleans()) or kind in ("identify", "alias"):
        event["userId"] = pick(st.sampled_from(["user-1", ""]), MAYBE_STR)
    page = {"url": pick(URLS, MAYBE_STR)}
    if draw(st.booleans()):
        page["referrer"] = pick(st.just("https://www.google.com/"), st.none() | TEXT)
    context: dict = {"page": page} if kind in ("page", "Page") or draw(st.booleans()) else {}
    if draw(st.booleans()):
        context["userAgent"] = pick(st.just("Mozilla/5.0"), st.just("x\x00y") | TEXT)
    if draw(st.integers(0, 9)) == 0:
        context["campaign"] = {"source": "news"}
    event["context"] = pick(st.just(context), ANY_JSON, odds=10)
    if kind == "track":
        event["event"] = pick(
            st.sampled_from(["purchase", "signup", " x "]), st.sampled_from(["", " "]) | MAYBE_STR
        )
        properties = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "value": mix(MONEY, MAYBE_STR),
                    "revenue": mix(MONEY, MAYBE_STR),
                    "currency": mix(st.sampled_from(["EUR", "usd", ""]), MAYBE_STR),
                    "is_confirmed": mix(st.booleans(), MAYBE_STR),
                    "is_active": mix(st.booleans(), MAYBE_STR),
                    "conversion_id": mix(st.sampled_from(["c1", ""]), IDS | INTS),
                    "source_object": mix(st.sampled_from(["plan"]), ANY_JSON),
                    "plan": ANY_JSON,
                },
            )
        )
        event["properties"] = pick(st.just(properties), ANY_JSON, odds=10)
    elif kind in ("identify", "group"):
        stamp = mix(TIMESTAMPS, MAYBE_STR, odds=6)
        traits = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "created_at": stamp,
                    "createdAt": mix(TIMESTAMPS, MAYBE_STR, odds=6),
                    "is_active": mix(st.booleans(), MAYBE_STR),
                    "account_id": mix(st.sampled_from(["acct-1", ""]), IDS | INTS),
                    "name": mix(st.sampled_from(["Acme"]), MAYBE_STR),
                    "subscription_start": stamp,
                },
            )
        )
        event["traits"] = pick(st.just(traits), ANY_JSON, odds=10)
        if kind == "group":
            event["groupId"] = pick(st.sampled_from(["acct-1", "acct-2"]), IDS | INTS)
    elif kind == "alias":
        event["previousId"] = pick(st.sampled_from(["anon-1"]), MAYBE_STR)
    if "properties" not in event and draw(st.booleans()):
        event["properties"] = pick(
            st.fixed_dictionaries({}, optional={"url": URLS, "referrer": TEXT, "title": TEXT}),
            ANY_JSON,
        )
    if "traits" not in event and draw(st.integers(0, 7)) == 0:
        event["traits"] = draw(ANY_JSON)
    return event


def _mutate(line: bytes, how: str) -> bytes:
    if how == "dup_type":
        return line.replace(b"{", b'{"type":"track",', 1)
    if how == "dup_type_after":
        return line[:-1] + b',"type":"identify"}'
    if how == "dup_user":
        return line[:-1] + b',"userId":"someone-else"}'
    if how == "escaped_key":
        return line.replace(b'"userId"', b'"user\\u0049d"', 1).replace(b'"type"', b'"typ\\u0065"')
    if how == "nan":
        return line[:-1] + b',"extra":NaN}'
    if how == "trailing_comma":
        return line[:-1] + b",}"
    if how == "huge_number":
        return line[:-1] + b',"extra":1e400}'
    if how == "deep":
        return line[:-1] + b',"extra":' + b"[" * 70 + b"]" * 70 + b"}"
    if how == "nul_escape":
        return line[:-1] + b',"extra":"a\\u0000b"}'
    if how == "latin1":
        return line[:-1] + b',"extra":"caf\xe9"}'
    if how == "nul_byte":
        return line[:-1] + b',"extra":"a\x00b"}'
    if how == "dup_in_properties":
        return line.replace(b'"properties":{', b'"properties":{"url":"x",', 1)
    if how == "dup_value":
        return line.replace(b'"properties":{', b'"properties":{"value":1,"value":2,', 1)
    if how == "dup_traits":
        return line.replace(b'"traits":{', b'"traits":{"created_at":"x",', 1)
    if how == "big_number":
        return line.replace(b'"properties":{', b'"properties":{"value":1' + b"0" * 120 + b",", 1)
    if how == "bytes_over_limit":  # fewer characters than the limit, more bytes
        return line[:-1] + b',"extra":"' + "\u00e9".encode() * 600_000 + b'"}'
    if how == "chars_over_limit":
        return line[:-1] + b',"extra":"' + b"x" * (1024 * 1024) + b'"}'
    if how == "crlf":
        return line + b"\r"
    return line


LINES = st.tuples(
    events(),
    st.sampled_from(
        ["none"] * 36
        + [
            "dup_type",
            "dup_type_after",
            "dup_user",
            "escaped_key",
            "nan",
            "trailing_comma",
            "huge_number",
            "deep",
            "nul_escape",
            "latin1",
            "nul_byte",
            "dup_in_properties",
            "dup_value",
            "dup_traits",
            "big_number",
            "crlf",
        ]
        + ["bytes_over_limit", "chars_over_limit"] * (EXAMPLES >= 30)
    ),
).map(lambda pair: _mutate(orjson.dumps(pair[0]), pair[1]))


def _take_rows(*targets) -> list[dict[str, list]]:
    """Every raw row of each settings' schema (without received_at), then empty them;
    one connection for all (opening a DuckDB file is the slow part)."""
    out = []
    with raw_connection(targets[0]) as conn:
        cur = conn if targets[0].is_duckdb else conn.cursor()
        for target in targets:
            tables = {}
            for table in DATA_TABLES:
                cols = [c.name for c in table.columns if c.name != "received_at"]
                name = f'"{target.raw_schema}"."{table.name}"'
                cur.execute(f"select {', '.join(cols)} from {name}")
                tables[table.name] = sorted(cur.fetchall(), key=repr)
                cur.execute(f"delete from {name}")
            out.append(tables)
        if not targets[0].is_duckdb:
            conn.commit()
    return out


def test_both_paths_write_the_same_rows_for_any_line(warehouse):
    fast = warehouse.settings
    slow = dataclasses.replace(fast, raw_schema=fast.raw_schema + "_reference")
    path = warehouse.tmp / "lines.ndjson"
    ensure_schema(fast)
    ensure_schema(slow)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        # No shrinking: each example writes to the warehouse; the failing one is printed.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(LINES, min_size=1, max_size=12))
    def check(lines: list[bytes]) -> None:
        path.write_bytes(b"\n".join(lines) + b"\n")
        one = load_files([path], settings=fast, vectorised=True)
        two = load_files([path], settings=slow, vectorised=False)
        assert one.balanced and two.balanced
        assert one.as_dict() | {"seconds": 0} == two.as_dict() | {"seconds": 0}
        rows_fast, rows_slow = _take_rows(fast, slow)
        assert rows_fast == rows_slow

    check()


def test_both_paths_parse_any_line_into_the_same_batch():
    """The same property without a warehouse, on many more examples: the rows each
    path hands to the writer (Arrow tables per raw table) are identical."""
    from datetime import datetime

    from trackhouse.fastpath import FastPath
    from trackhouse.loader import LoadReport, parse_chunk
    from trackhouse.writer import batch_table

    fast = FastPath()
    taken = []  # lines the vectorised path took: the property is not vacuous

    def tables(batch) -> dict[str, list]:
        out = {}
        for table in DATA_TABLES:
            rows = batch_table(batch, table.name).drop_columns(["received_at"]).to_pylist()
            out[table.name] = sorted(rows, key=repr)
        return out

    @settings(
        max_examples=EXAMPLES * 5,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # the failing example is printed
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.lists(LINES, min_size=1, max_size=20))
    def check(lines: list[bytes]) -> None:
        chunk = list(enumerate(lines, start=1))
        at = datetime(2024, 5, 2)
        reports = LoadReport(), LoadReport()
        one = parse_chunk(
            chunk, source="s", received_at=at, allowed_events=None, report=reports[0], fast=fast
        )
        two = parse_chunk(
            chunk, source="s", received_at=at, allowed_events=None, report=reports[1], fast=None
        )
        assert reports[0].as_dict() == reports[1].as_dict()
        assert one.duplicates_in_batch == two.duplicates_in_batch
        assert tables(one) == tables(two)
        taken.append(sum(t.num_rows for t in one.arrow.get("events", [])))

    try:
        check()
    finally:
        fast.close()
    # (most examples mix in odd types and hostile lines: about two lines in five are plain)
    assert sum(taken) >= EXAMPLES, "the vectorised path took almost no line"
