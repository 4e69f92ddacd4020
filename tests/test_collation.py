"""Ties broken by an id go the same way on DuckDB and on PostgreSQL, whatever
the database's collation (macros/collation/byte_order.sql).

Two identify calls state a different account for one user at the same instant,
in one load (so the same received_at): the later event id wins. In bytes
"a-event" > "B-event"; in an en-US collation it is the other way round. The
PostgreSQL database here is created with an ICU en-US collation on purpose (the
test server's default is C, where the difference cannot show).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from trackhouse.loader import load_files

from conftest import ROOT, Warehouse
from factories import identify

EVENTS = [
    identify("2024-05-01T10:00:00Z", "u1", account_id="acct-B", message_id="B-event"),
    identify("2024-05-01T10:00:00Z", "u1", account_id="acct-a", message_id="a-event"),
]


def account_of_u1(warehouse: Warehouse) -> str:
    report = load_files([warehouse.write_ndjson(EVENTS)], settings=warehouse.settings)
    assert report.rejected == 0, report.rejections
    warehouse.dbt("run", "--select", "+users")
    (row,) = warehouse.query(
        f"select account_id from \"{warehouse.settings.mart_schema}\".users where user_id = 'u1'"
    )
    return row["account_id"]


def test_latest_statement_ties_break_by_bytes_on_duckdb(tmp_path: Path, monkeypatch):
    env = {"TRACKHOUSE_TARGET": "duckdb", "TRACKHOUSE_DUCKDB_PATH": str(tmp_path / "t.duckdb")}
    env |= {"TRACKHOUSE_PROJECT_DIR": str(ROOT), "DBT_PROFILES_DIR": str(ROOT)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert account_of_u1(Warehouse("duckdb", env, tmp_path)) == "acct-a"


def test_latest_statement_ties_break_by_bytes_on_postgres_en_us(pg, tmp_path: Path, monkeypatch):
    dbname = f"th_icu_{uuid.uuid4().hex[:8]}"
    with pg.connect() as conn:
        try:
            conn.execute(
                f'create database "{dbname}" template template0 '
                "locale_provider icu icu_locale 'en-US' locale 'C'"
            )
        except Exception as exc:
            pytest.fail(f"cannot create an ICU en-US database on the test server: {exc}")
    env = pg.env(dbname) | {"TRACKHOUSE_PROJECT_DIR": str(ROOT), "DBT_PROFILES_DIR": str(ROOT)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    warehouse = Warehouse("postgres", env, tmp_path)
    # the database really sorts as en-US: 'a' before 'B'
    (en_us,) = warehouse.query("select 'a-event' < 'B-event' as a_first")
    assert en_us["a_first"] is True
    assert account_of_u1(warehouse) == "acct-a"
