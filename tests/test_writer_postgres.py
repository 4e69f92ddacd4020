"""The PostgreSQL write path (writer.py): a batch's new events are COPY'd straight into
the raw tables under the write lock, in PostgreSQL's binary format where the columns
allow. What a user relies on, checked by rows and counts: the same rows as DuckDB,
overlapping loads land each event once, a failed batch leaves nothing behind, and a key
already in a typed table (without its ledger row) is skipped rather than failing the load.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trackhouse.demo import generate_events
from trackhouse.loader import load_files
from trackhouse.schema import DATA_TABLES, EVENT_TABLES

from conftest import ROOT, SQL_TARGETS, Warehouse
from factories import group, identify, page, statistic, track

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        "postgres" not in SQL_TARGETS, reason="TRACKHOUSE_TEST_TARGETS excludes postgres"
    ),
]

# Values the binary COPY has to get exactly right: nulls in every column type, times
# before PostgreSQL's epoch (2000) and Arrow's (1970), fractions of a second, an empty
# string next to a missing one, text that CSV or an array literal would have to quote.
AWKWARD = [
    identify(
        "1999-12-31T23:59:59.999999Z",
        'user-"quoted", back\\slash',
        anonymous_id="",
        message_id='id "1", {a\\b}',
        created_at="1969-07-20T20:17:40Z",
        is_active=False,
        account_id="acc,1",
    ),
    identify("2024-02-29T12:00:00.5+01:00", "user-2", message_id="id-2"),
    group(
        "1970-01-01T00:00:00Z",
        "user-2",
        "acc\n2",
        message_id="g-1",
        name="Ünïcødé 😀 \t tab",
        subscription_start="1950-01-01T00:00:00Z",
    ),
    track(
        "2024-05-01T10:06:00Z",
        "purchase",
        user_id="user-2",
        message_id="t-1",
        value=1234567.891234,
        currency="eur",
        is_confirmed=True,
        is_active=None,
    ),
    statistic(
        "2024-05-02T00:00:00Z",
        "shop.revenue",
        "-0.000001",
        "day",
        "1999-12-31",
        object_type="product",
        object_id="p,1",
        message_id="s-1",
    ),
    page(
        "2024-05-01T10:00:00Z",
        "https://shop.example/?utm_source=a%22b&utm_campaign=x,y",
        anonymous_id="anon \\N",
        referrer="",
        user_agent='Mozilla "5.0"',
        message_id="p-1",
    ),
]


@pytest.fixture
def pg_warehouse(pg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    dbname = f"th_w_{uuid.uuid4().hex[:12]}"
    pg.create_database(dbname)
    env = {**pg.env(dbname), "TRACKHOUSE_PROJECT_DIR": str(ROOT), "DBT_PROFILES_DIR": str(ROOT)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield Warehouse(target="postgres", env=env, tmp=tmp_path)
    from trackhouse.engine import dispose_engines

    dispose_engines()
    pg.drop_database(dbname)


def _rows(wh: Warehouse, table: str) -> list[tuple[Any, ...]]:
    """A raw table's rows but received_at (the moment of each load), in one order."""
    rows = wh.query(f'select * from "{wh.settings.raw_schema}"."{table}"')
    values = [tuple(v for k, v in row.items() if k != "received_at") for row in rows]
    return sorted(values, key=lambda r: tuple((v is None, str(v)) for v in r))


def _balanced(report: Any) -> bool:
    return bool(report.received == report.accepted + report.rejected + report.duplicates)


def test_the_same_rows_as_duckdb(
    pg_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = generate_events(users=15, days=10, seed=3, end=dt.date(2024, 6, 1))
    path = pg_warehouse.write_ndjson([*AWKWARD, *demo, b"{not json", b'{"type": "page"}'])
    monkeypatch.setenv("TRACKHOUSE_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    duck = Warehouse(target="duckdb", env={}, tmp=tmp_path)
    # Batches of 50: several COPYs per load, and pieces of every size.
    on_pg = load_files([path], settings=pg_warehouse.settings, batch_size=50)
    on_duck = load_files([path], settings=duck.settings, batch_size=50)
    assert on_pg.as_dict() | {"seconds": 0} == on_duck.as_dict() | {"seconds": 0}
    for table in DATA_TABLES:
        assert _rows(pg_warehouse, table.name) == _rows(duck, table.name), table.name
    assert _rows(pg_warehouse, "statistics"), "the awkward events should fill every table"


def test_overlapping_loads_land_each_event_once(pg_warehouse: Warehouse) -> None:
    events = list(generate_events(users=8, days=6, seed=11, end=dt.date(2024, 6, 1)))
    third = len(events) // 3
    first = pg_warehouse.write_ndjson(events[: 2 * third], "first.ndjson")
    second = pg_warehouse.write_ndjson(events[third:], "second.ndjson")
    everything = pg_warehouse.write_ndjson(events, "all.ndjson")

    one = load_files([first], settings=pg_warehouse.settings, batch_size=7)
    # Batches of the second file hold events already stored, new ones, or both.
    two = load_files([second], settings=pg_warehouse.settings, batch_size=7)
    assert _balanced(one) and _balanced(two)
    assert two.duplicates == third and two.accepted == len(events) - 2 * third
    rows = {t.name: _rows(pg_warehouse, t.name) for t in (DATA_TABLES[0], *EVENT_TABLES)}
    assert len(rows["events"]) == len(events)

    # All of it again, in one batch: nothing changes.
    again = load_files([everything], settings=pg_warehouse.settings)
    assert (again.accepted, again.duplicates) == (0, len(events))
    assert {name: _rows(pg_warehouse, name) for name in rows} == rows


def test_a_failed_batch_leaves_nothing_and_a_retry_lands_it(pg_warehouse: Warehouse) -> None:
    events = [
        page("2024-05-01T10:00:00Z", "https://e.example/?utm_source=a", anonymous_id="a1"),
        track("2024-05-01T10:01:00Z", "signup", user_id="u1", message_id="first-batch"),
        track("2024-05-01T10:02:00Z", "signup", user_id="u2", message_id="boom"),
        identify("2024-05-01T10:03:00Z", "u2", anonymous_id="a2"),
    ]
    path = pg_warehouse.write_ndjson(events)
    raw = f'"{pg_warehouse.settings.raw_schema}"'
    pg_warehouse.cli("init")
    # The server fails the second batch half-way: after its ledger rows are written.
    with _connect(pg_warehouse) as conn:
        conn.execute(
            "create function th_test_boom() returns trigger language plpgsql as $$ begin "
            "if new.event_id = 'boom' then raise exception 'boom'; end if; return new; end $$"
        )
        conn.execute(
            f"create trigger th_test_boom before insert on {raw}.activity "
            "for each row execute function th_test_boom()"
        )
    with pytest.raises(Exception, match="boom"):
        load_files([path], settings=pg_warehouse.settings, batch_size=2)
    # The first batch is there, nothing of the second.
    assert {r[0] for r in _rows(pg_warehouse, "events")} == {events[0]["messageId"], "first-batch"}
    assert [r[0] for r in _rows(pg_warehouse, "activity")] == ["first-batch"]
    assert pg_warehouse.count("batches") == 1

    with _connect(pg_warehouse) as conn:
        conn.execute(f"drop trigger th_test_boom on {raw}.activity")
    retry = load_files([path], settings=pg_warehouse.settings, batch_size=2)
    assert (retry.accepted, retry.duplicates) == (2, 2) and _balanced(retry)
    assert pg_warehouse.count("events") == 4 and pg_warehouse.count("activity") == 3


def test_a_key_left_in_a_typed_table_is_skipped(pg_warehouse: Warehouse) -> None:
    """A typed row whose ledger row is gone (a clean-up that deleted from the ledger
    only): loading its event again restores the ledger row and keeps the typed one."""
    events = [
        page("2024-05-01T10:00:00Z", "https://e.example/?utm_source=a", anonymous_id="a1"),
        track("2024-05-01T10:01:00Z", "purchase", user_id="u1", message_id="t1", value=5),
        identify("2024-05-01T10:02:00Z", "u1", anonymous_id="a1"),
    ]
    path = pg_warehouse.write_ndjson(events)
    load_files([path], settings=pg_warehouse.settings)
    typed = {t.name: _rows(pg_warehouse, t.name) for t in EVENT_TABLES}
    with _connect(pg_warehouse) as conn:
        conn.execute(
            f"delete from \"{pg_warehouse.settings.raw_schema}\".events where message_id = 't1'"
        )

    again = load_files([path], settings=pg_warehouse.settings)
    assert (again.accepted, again.duplicates) == (1, 2) and _balanced(again)
    assert pg_warehouse.count("events") == 3
    assert {t.name: _rows(pg_warehouse, t.name) for t in EVENT_TABLES} == typed


def _connect(wh: Warehouse) -> Any:
    import psycopg

    env = wh.env
    return psycopg.connect(
        host=env["TRACKHOUSE_PG_HOST"],
        port=env["TRACKHOUSE_PG_PORT"],
        user=env["TRACKHOUSE_PG_USER"],
        dbname=env["TRACKHOUSE_PG_DBNAME"],
        autocommit=True,
    )
