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

TABLES = ("events", "activity", "touchpoints", "rejected")


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


def test_the_vectorised_path_takes_exactly_the_plain_page_views():
    from datetime import datetime

    from trackhouse.fastpath import FastPath
    from trackhouse.loader import _texts

    texts = _texts(CORPUS)
    numbered = [(n, t) for n, t in enumerate(texts, start=1) if t is not None]
    fast = FastPath()
    try:
        rows = fast.run(
            [n for n, _ in numbered],
            [t for _, t in numbered],
            source="corpus",
            received_at=datetime(2024, 5, 2),
        )
    finally:
        fast.close()
    plain = {*range(1, 19), 40, 41}
    assert set(rows.line_numbers) == plain
    touchpoints = rows.tables["touchpoints"].column("line_number").to_pylist()
    # no tracking parameter, '#?utm', '?a=1?utm', 'utm_sourcex', an empty url: no touchpoint
    assert set(touchpoints) == plain - {6, 8, 9, 10, 13}


def test_the_vectorised_path_reads_what_the_declaration_says():
    """fastpath.py derives what it reads from parsing.FIELDS: the page view's fields."""
    from trackhouse import fastpath
    from trackhouse.parsing import OBJECT_PATHS, fields_for

    declared = {f.path: f for f in fields_for("page")}
    # Every field it reads is declared for a page view, with a kind it can take plainly.
    assert set(fastpath.STRUCT_PATHS) <= set(declared)
    assert all(declared[p].kind in fastpath.PLAIN_KINDS for p in fastpath.STRUCT_PATHS)
    assert {f.kind for f in declared.values()} <= set(fastpath.PLAIN_KINDS)
    # It checks the JSON kind of every declared field, and nothing else.
    assert [path for path, _ in fastpath._FIELDS] == [f.json_path for f in declared.values()]
    # Every object a page view is read from is checked for duplicated keys.
    objects = {p for p in OBJECT_PATHS if not p or p in declared}
    assert {p.removeprefix("$").removeprefix(".") for p in fastpath._OBJECTS} == objects
    # Fields it does not write (a campaign) must be absent for it to take the line.
    assert set(fastpath.OVERRIDES) <= set(declared)
