"""The loader's vectorised path must give exactly the rows the Python parser gives."""

from __future__ import annotations

import orjson
import pytest

from trackhouse.loader import load_files
from trackhouse.settings import load_settings

T = "2024-05-01T10:00:00Z"
URL = "https://shop.example/landing?utm_source=google&utm_campaign=spring%20sale"


def _page(**overrides):
    event = {
        "type": "page",
        "messageId": f"m-{len(CORPUS)}",
        "timestamp": T,
        "anonymousId": "anon-1",
        "context": {
            "page": {"url": URL, "referrer": "https://www.google.com/"},
            "userAgent": "Mozilla/5.0",
        },
    }
    event.update(overrides)
    return event


CORPUS: list[bytes] = []


def _add(raw: dict | bytes) -> None:
    CORPUS.append(raw if isinstance(raw, bytes) else orjson.dumps(raw))


# Plain pages (the vectorised path takes these) ...
_add(_page())
_add(_page(userId="user-1"))
_add(_page(anonymousId=None, userId="user-2"))
_add(_page(timestamp="2024-05-01T12:00:00.5+02:00"))
_add(_page(timestamp="2024-05-01T12:00:00.123456-05:30"))
_add(_page(context={"page": {"url": "https://shop.example/no-tracking?ref=x"}}))
_add(_page(context={"page": {"url": "https://shop.example/?gclid=abc#top"}}))
_add(_page(context={"page": {"url": "https://shop.example/#?utm_source=x"}}))
_add(_page(context={"page": {"url": "https://shop.example/?a=1?utm_source=x"}}))
_add(_page(context={"page": {"url": "https://shop.example/?utm_sourcex=1"}}))
_add(_page(context={"page": {"url": "https://shop.example/?x=1&utm_term"}}))
_add(_page(context={"page": {"url": ""}}, properties={"url": URL, "referrer": "r"}))
_add(_page(context={"page": {"url": "", "referrer": ""}}, properties={"url": ""}))
_add(_page(context={"page": {"url": URL}, "userAgent": ""}))
_add(_page(anonymousId="", userId="user-3"))
_add(_page(traits={"x": 1}, properties={"title": "t", "n": 1.5}))
_add(_page(messageId="dup-1"))
_add(_page(messageId="dup-1", anonymousId="other"))
# ... and shapes it must leave to the Python parser.
_add(_page(context={"page": {"url": "https://shop.example/?utm%5Fsource=enc"}}))
_add(_page(context={"page": {"url": "https://shop.example/?utm+source=x&utm_medium=y"}}))
_add(_page(context={"page": {"url": URL}, "campaign": {"source": "news"}}))
_add(_page(context={"page": {"url": "\thttps://shop.example/?utm_source=tab"}}))
_add(_page(anonymousId=12345))
_add(_page(anonymousId=1.5))
_add(_page(userId=True))
_add(_page(messageId=7))
_add(_page(messageId=""))
_add(_page(timestamp="2024-05-01T10:00:00"))
_add(_page(timestamp="2024-02-30T10:00:00Z"))
_add(_page(timestamp="2024-05-01T23:59:60Z"))
_add(_page(timestamp="2024-05-01 10:00:00+00:00"))
_add(_page(timestamp=1714557600))
_add(_page(context={"page": {"url": 5}}))
_add(_page(context={"page": {"url": False}}, properties={"url": URL}))
_add(_page(context="not an object"))
_add(_page(properties=["a"]))
_add(_page(anonymousId=None))
_add(_page(anonymousId="nul\u0000id"))
_add(_page(messageId="dup-2", type="track", event="signup"))
_add(_page(messageId="dup-2"))
_add(_page(messageId="dup-3"))
_add(_page(messageId="dup-3", type="identify", userId="user-9"))
_add(b'{"type": "page", "messageId": "broken"')
_add(
    b'{"type": "page", "messageId": "latin", "anonymousId": "caf\xe9", "timestamp": "'
    + T.encode()
    + b'"}'
)
_add(b'"just a string"')
# Other event types: plain ones (the vectorised path takes these) ...
FIRST_OTHER = len(CORPUS) + 1


def _event(kind: str, **fields):
    return {
        "type": kind,
        "messageId": f"m-{len(CORPUS)}",
        "timestamp": T,
        "anonymousId": "anon-1",
        "userId": "user-1",
        **fields,
    }


_add(_event("screen", properties={"name": "Home"}))
_add(_event("screen", userId=None))
_add(_event("track", event="signup", properties={"method": "email"}))
_add(_event("track", event="purchase", properties={"value": 19.99, "currency": "eur"}))
_add(_event("track", event="purchase", properties={"value": "20.5", "revenue": 3}))
_add(_event("track", event="purchase", properties={"revenue": 7, "is_confirmed": False}))
_add(
    _event(
        "track",
        event="trial",
        properties={"conversion_id": "c-1", "is_active": False, "source_object": "plan"},
    )
)
_add(_event("track", event=" spaced ", properties={"value": None, "plan": {"a": [1, 2.5]}}))
_add(_event("identify", traits={"created_at": "2024-01-01T00:00:00+01:00", "is_active": True}))
_add(_event("identify", anonymousId=None, traits={"createdAt": T, "account_id": "acct-1"}))
_add(_event("identify", traits={"created_at": "", "createdAt": T}))
_add(_event("group", groupId="acct-1", traits={"name": "Acme", "subscription_start": T}))
_add(_event("group", groupId="acct-2", userId=None))
LAST_PLAIN_OTHER = len(CORPUS)
# ... and the shapes it leaves to Python.
_add(_event("alias", previousId="anon-1"))
_add(
    _event(
        "statistic",
        properties={"metric": "a.b", "value": 1, "period": "day", "date": "2024-05-01"},
    )
)
_add(_event("track", event="", properties={}))
_add(_event("track", event="   "))
_add(_event("track", event="x", properties={"value": 1e20}))
_add(_event("track", event="x", properties={"value": 0.1 + 0.2}))
_add(_event("track", event="x", properties={"value": "abc"}))
_add(_event("track", event="x", properties={"value": True}))
_add(_event("track", event="x", properties={"currency": "euro"}))
_add(_event("track", event="x", properties={"conversion_id": 7}))
_add(_event("track", event="x", properties={"source_object": {"a": 1}}))
_add(_event("track", event="x", properties={"is_confirmed": "yes"}))
_add(_event("track", event=5))
_add(_event("identify", userId=None))
_add(_event("identify", traits={"created_at": "2024-02-30T00:00:00Z"}))
_add(_event("identify", traits={"createdAt": "yesterday"}))
_add(_event("identify", traits={"is_active": "yes"}))
_add(_event("identify", traits={"created_at": "9999-12-31T23:59:59-14:00"}))
_add(_event("group", groupId="a", traits={"subscription_start": "0001-01-01T00:30:00+01:00"}))
_add(_event("identify", traits="not an object"))
_add(_event("group", groupId=""))
_add(_event("group", groupId=42))
_add(_event("group", groupId="a", traits={"subscription_start": 5}))
_add(_event("screen", anonymousId=None, userId=None))
_add(_event("screen", context={"userAgent": "x"}, properties=[1]))

TABLES = (
    "events",
    "activity",
    "touchpoints",
    "conversion_events",
    "identity_links",
    "users",
    "accounts",
    "rejected",
)


def _rows(settings, query_fetch, table):
    cols = "* exclude (received_at)" if settings.is_duckdb else "*"
    rows = query_fetch(f'select {cols} from "{settings.raw_schema}"."{table}" order by 1')
    for row in rows:
        row.pop("received_at", None)
    return rows


def test_vectorised_and_python_paths_give_the_same_rows(warehouse, tmp_path, monkeypatch):
    path = warehouse.write_ndjson(CORPUS)
    fast_report = load_files([path], settings=warehouse.settings, vectorised=True)

    monkeypatch.setenv("TRACKHOUSE_TARGET", "duckdb")
    monkeypatch.setenv("TRACKHOUSE_DUCKDB_PATH", str(tmp_path / "reference.duckdb"))
    reference = load_settings("duckdb")
    slow_report = load_files([path], settings=reference, vectorised=False)

    assert fast_report.as_dict() | {"seconds": 0} == slow_report.as_dict() | {"seconds": 0}
    assert fast_report.balanced and fast_report.rejected > 10 and fast_report.duplicates == 3

    from trackhouse.query import fetch

    for table in TABLES:
        got = _rows(warehouse.settings, lambda q: fetch(q, None, warehouse.settings), table)
        want = _rows(reference, lambda q: fetch(q, None, reference), table)
        assert got == want, table


@pytest.mark.parametrize("vectorised", [True, False])
def test_duplicates_keep_the_first_line(warehouse, vectorised):
    lines = [orjson.dumps(_page(messageId="same", anonymousId=f"a{i}")) for i in range(3)]
    report = load_files(
        [warehouse.write_ndjson(lines)], settings=warehouse.settings, vectorised=vectorised
    )
    assert (report.accepted, report.duplicates) == (1, 2)
    (row,) = warehouse.raw("events")
    assert row["line_number"] == 1 and row["anonymous_id"] == "a0"


def test_the_vectorised_path_takes_exactly_the_plain_events():
    from datetime import datetime

    from trackhouse.fastpath import FastPath
    from trackhouse.loader import Lines

    lines = Lines.of(list(enumerate(CORPUS, start=1)))
    fast = FastPath()
    try:
        rows = fast.run_table(lines.table(), source="corpus", received_at=datetime(2024, 5, 2))
    finally:
        fast.close()
    # lines 39 and 42 are a plain track and a plain identify event
    plain = {*range(1, 19), 39, 40, 41, 42, *range(FIRST_OTHER, LAST_PLAIN_OTHER + 1)}
    assert set(rows.line_numbers) == plain
    touchpoints = rows.tables["touchpoints"].column("line_number").to_pylist()
    # no tracking parameter, '#?utm', '?a=1?utm', 'utm_sourcex', an empty url: no touchpoint
    assert set(touchpoints) == {*range(1, 19), 40, 41} - {6, 8, 9, 10, 13}
    tables = {name: table.num_rows for name, table in rows.tables.items()}
    assert tables["conversion_events"] == 7
    assert (tables["users"], tables["identity_links"], tables["accounts"]) == (4, 3, 2)


def test_the_vectorised_path_reads_what_the_declaration_says():
    """fastpath.py derives what it reads from parsing.FIELDS: the fields of each type."""
    from trackhouse import fastpath
    from trackhouse.parsing import OBJECT_PATHS, fields_for

    for event_type in fastpath.TYPES:
        declared = {f.path: f for f in fields_for(event_type)}
        # It reads every declared field, with a kind it can take plainly.
        assert set(declared) <= set(fastpath.PATHS)
        assert {f.kind for f in declared.values()} <= set(fastpath.PLAIN_KINDS)
        # Every object an event is read from is checked for duplicated keys.
        objects = {p for p in OBJECT_PATHS if not p or p in declared}
        assert objects - set(fastpath.OVERRIDES) <= set(fastpath.OBJECTS)
    assert set(fastpath.PATHS) == {f.path for t in fastpath.TYPES for f in fields_for(t)}
    # Fields it does not write (a campaign) must be absent for it to take the line.
    assert set(fastpath.OVERRIDES) <= set(fastpath.PATHS)


def test_lines_too_large_for_the_memory_limit_still_take_the_vectorised_path(monkeypatch):
    """The in-memory database runs under a memory limit; a slice of large lines that
    does not fit lifts it rather than falling back to the Python parser."""
    from datetime import datetime

    from trackhouse import fastpath
    from trackhouse.loader import Lines

    big = [
        orjson.dumps(_page(messageId=f"big-{i}", properties={"blob": "x" * 20_000}))
        for i in range(400)
    ]
    lines = Lines.of(list(enumerate(big, start=1)))
    monkeypatch.setattr(fastpath, "MIN_PARALLEL_LINES", 100)  # two slices at once hit it
    found = {}
    for limit in ("8MB", fastpath.MEMORY_LIMIT):
        monkeypatch.setattr(fastpath, "MEMORY_LIMIT", limit)
        fast = fastpath.FastPath(parallel=2)
        try:
            rows = fast.run_table(lines.table(), source="big", received_at=datetime(2024, 5, 2))
            found[limit] = (fast._limited, rows.tables["events"].to_pylist())
        finally:
            fast.close()
    (lifted, under_8mb), (kept, unlimited) = found.values()
    assert lifted is False and kept is True
    assert len(under_8mb) == 400 and under_8mb == unlimited


def test_slices_judged_at_once_give_the_rows_of_one_query(monkeypatch):
    """A large chunk is cut into slices judged concurrently, each on its own
    connection: the rows of every table are those of one query."""
    from datetime import datetime

    from trackhouse import fastpath
    from trackhouse.loader import Lines

    corpus = [line.replace(b'"m-', b'"m-%d-' % copy) for copy in range(7) for line in CORPUS]
    lines = Lines.of(list(enumerate(corpus, start=1)))

    def judged(slice_lines: int, min_parallel: int) -> fastpath.FastRows:
        monkeypatch.setattr(fastpath, "SLICE_LINES", slice_lines)
        monkeypatch.setattr(fastpath, "MIN_PARALLEL_LINES", min_parallel)
        fast = fastpath.FastPath(parallel=2)
        try:
            return fast.run_table(lines.table(), source="c", received_at=datetime(2024, 5, 2))
        finally:
            fast.close()

    whole = judged(len(corpus), len(corpus))  # one slice
    sliced = judged(23, 1)  # many slices, two in flight at a time
    assert len(whole.line_numbers) > 200  # 35 plain lines of CORPUS, 7 times
    # The order of the rows is not kept (not within one query either: pages come first).
    assert sorted(sliced.line_numbers) == sorted(whole.line_numbers)
    assert sorted(sliced.message_ids.to_pylist()) == sorted(whole.message_ids.to_pylist())
    assert set(sliced.tables) == set(whole.tables)

    def rows(table):
        return sorted(table.to_pylist(), key=lambda row: row["line_number"])

    for name, table in whole.tables.items():
        assert rows(sliced.tables[name]) == rows(table), name


# Values DuckDB's JSON reader (yyjson) accepts and orjson refuses, each after every
# character a JSON value can follow, with and without whitespace.
_LENIENT_VALUES = ["NaN", "-nan", "Infinity", "-Infinity", "inf", "1e400", "-2.5E+999"]
_LENIENT_VALUES += ["1" + "0" * 400, "-" + "9" * 400 + ".5"]  # beyond a double: infinity


def _lenient_lines() -> list[bytes]:
    plain = orjson.dumps(_page(messageId="lenient"))[:-1]
    lines = []
    for value in _LENIENT_VALUES:
        for gap in ("", " ", "\t"):
            lines.append(plain + b',"extra":' + gap.encode() + value.encode() + b"}")
            lines.append(plain + b',"extra":[' + gap.encode() + value.encode() + b"]}")
            lines.append(plain + b',"extra":[1,' + gap.encode() + value.encode() + b"]}")
    for gap in ("", " ", "\t"):
        lines.append(plain + b"," + gap.encode() + b"}")
        lines.append(plain + b',"extra":[1,' + gap.encode() + b"]}")
    return lines


def test_lines_only_duckdb_reads_are_left_to_python():
    """NaN, Infinity, overflowing numbers and trailing commas, wherever a value can
    stand: DuckDB reads each of these lines, orjson refuses it, so the vectorised
    path must not take it (the Python parser rejects it as malformed JSON). The same
    line with ordinary values, also inside strings, is taken."""
    from datetime import datetime

    import duckdb

    from trackhouse.fastpath import FastPath
    from trackhouse.loader import Lines

    lenient = _lenient_lines()
    plain = orjson.dumps(_page(messageId="lenient"))[:-1]
    ordinary = [
        plain + b',"extra":' + value + b"}"
        for value in (b"1e10", b"[1, 2.5e-3]", b'"NaN or Infinity"', b'[ "Infinity" ]', b"null")
    ]
    for line in lenient:
        assert duckdb.sql("select json_valid($1)", params=[line.decode()]).fetchall() == [(True,)]
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(line)
    lines = Lines.of(list(enumerate(lenient + ordinary, start=1)))
    fast = FastPath()
    try:
        rows = fast.run_table(lines.table(), source="lenient", received_at=datetime(2024, 5, 2))
    finally:
        fast.close()
    assert set(rows.line_numbers) == set(range(len(lenient) + 1, len(lenient) + len(ordinary) + 1))
