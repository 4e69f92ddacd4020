"""`trackhouse init --roles`: writer, transformer and reader can do their job, and no more.

On a real PostgreSQL database: the admin creates the roles (twice: idempotent);
the writer loads a file with `trackhouse load`; the transformer runs `dbt build`
with the reader grants on; the reader reads every mart. Then each role is shown
what it must not do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from trackhouse.errors import TrackhouseError
from trackhouse.roles import READER, READER_ROLE_ENV, TRANSFORMER, WRITER, create_roles
from trackhouse.settings import load_settings

from conftest import ROOT, TARGETS, Warehouse
from factories import identify, page, track

BIN = Path(sys.executable).parent
VARS = {"as_of": "2024-05-03"}

EVENTS = [
    page(
        "2024-05-01T10:00:00Z",
        "https://shop.example/?utm_source=google&utm_campaign=spring",
        anonymous_id="anon-1",
    ),
    identify(
        "2024-05-01T10:05:00Z", "user-1", anonymous_id="anon-1", created_at="2024-05-01T10:05:00Z"
    ),
    track("2024-05-01T10:06:00Z", "purchase", user_id="user-1", value=19.99, currency="EUR"),
    {
        "type": "group",
        "messageId": "g-1",
        "timestamp": "2024-05-01T10:07:00Z",
        "userId": "user-1",
        "groupId": "acct-1",
        "traits": {"name": "Acme", "subscription_start": "2024-05-01T00:00:00Z"},
    },
    {
        "type": "alias",
        "messageId": "a-1",
        "timestamp": "2024-05-02T09:00:00Z",
        "previousId": "anon-2",
        "userId": "user-1",
    },
    page("2024-05-02T09:01:00Z", "https://app.example/dashboard", user_id="user-1"),
    {
        "type": "statistic",
        "messageId": "s-1",
        "timestamp": "2024-05-02T23:00:00Z",
        "properties": {
            "metric": "support.tickets_closed",
            "value": 3,
            "period": "day",
            "date": "2024-05-02",
        },
    },
]

pytestmark = [
    pytest.mark.xdist_group("roles"),
]
needs_postgres = pytest.mark.skipif(
    "postgres" not in TARGETS,
    reason="TRACKHOUSE_TEST_TARGETS excludes postgres (" + ",".join(TARGETS) + ")",
)


def as_role(pg: Any, dbname: str, tmp: Path, user: str, **extra: str) -> Warehouse:
    """A Warehouse whose CLI and dbt connect as `user`."""
    env = {
        **pg.env(dbname, user=user),
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        "DBT_PROFILES_DIR": str(ROOT),
        **extra,
    }
    tmp.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return Warehouse(target="postgres", env=env, tmp=tmp)


def dbt(wh: Warehouse, target_path: Path, *args: str) -> None:
    wh.run(
        str(BIN / "dbt"), *args,
        "--profiles-dir", str(ROOT), "--project-dir", str(ROOT),
        "--target-path", str(target_path), "--log-path", str(target_path),
        "--vars", orjson.dumps(VARS).decode(),
    )  # fmt: skip


class Deployment:
    def __init__(self, pg: Any, dbname: str, tmp: Path) -> None:
        self.pg, self.dbname, self.tmp = pg, dbname, tmp
        self.admin = as_role(pg, dbname, tmp / "admin", "postgres")
        self.raw = self.admin.settings.raw_schema
        self.mart_schema = self.admin.settings.mart_schema
        self.init_outputs: list[str] = []
        self.load_outputs: list[str] = []
        self.marts: list[str] = []
        self.staging: list[str] = []

    def connect(self, user: str) -> psycopg.Connection[Any]:
        return self.pg.connect(self.dbname, user=user)

    def denied(self, user: str, sql: str) -> bool:
        """True when `user` gets 'permission denied' for `sql`."""
        with self.connect(user) as conn:
            try:
                conn.execute(sql)
            except psycopg.errors.InsufficientPrivilege:
                return True
            except psycopg.errors.ObjectNotInPrerequisiteState as exc:
                # a view that nobody can write to (the activity_events mart)
                return "not automatically updatable" in str(exc)
        return False


@pytest.fixture(scope="module")
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    pg = request.getfixturevalue("pg")
    tmp = tmp_path_factory.mktemp("roles")
    dbname = f"th_roles_{uuid.uuid4().hex[:8]}"
    pg.create_database(dbname)
    d = Deployment(pg, dbname, tmp)
    for _ in range(2):  # the second run must change nothing and succeed
        d.init_outputs.append(d.admin.cli("init", "--roles").stdout)

    writer = as_role(pg, dbname, tmp / "writer", WRITER)
    path = writer.write_ndjson([*EVENTS, b"{not json"])
    for _ in range(2):  # the second load exercises de-duplication as the writer
        d.load_outputs.append(writer.cli("load", str(path), "--format", "json").stdout)

    transformer = as_role(pg, dbname, tmp / "transformer", TRANSFORMER, **{READER_ROLE_ENV: READER})
    target_path = tmp / "dbt"
    dbt(transformer, target_path, "build", "--exclude-resource-type", "unit_test")  # cf. conftest
    manifest = json.loads((target_path / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    for folder, found in (("marts", d.marts), ("staging", d.staging)):
        found += sorted(
            f'"{n["schema"]}"."{n["alias"] or n["name"]}"'
            for n in models
            if n["original_file_path"].startswith(f"models/{folder}/")
        )
    # A second build replaces the mart tables: the grants must come back with them.
    dbt(transformer, target_path, "run")
    yield d


@needs_postgres
def test_init_roles_creates_three_roles_and_is_idempotent(deployment: Deployment) -> None:
    first, second = deployment.init_outputs
    for role in (WRITER, TRANSFORMER, READER):
        assert f"role {role}: created" in first
        assert f"role {role}: exists" in second
    with deployment.connect("postgres") as conn:
        rows = conn.execute(
            "select rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb from pg_roles "
            "where rolname like 'trackhouse\\_%' order by 1"
        ).fetchall()
    assert rows == [
        (role, True, False, False, False) for role in sorted((WRITER, TRANSFORMER, READER))
    ]


@needs_postgres
def test_only_an_admin_may_create_the_roles(deployment: Deployment) -> None:
    reader = as_role(deployment.pg, deployment.dbname, deployment.tmp / "reader", READER)
    done = reader.cli("init", "--roles", check=False)
    assert done.returncode == 1  # a failure (permission), not a usage error
    assert "'trackhouse_reader' may not create roles" in done.stderr
    assert "TRACKHOUSE_PG_USER=postgres" in done.stderr


@needs_postgres
def test_the_writer_loads_files_and_nothing_else(deployment: Deployment) -> None:
    first, second = (json.loads(out)[0] for out in deployment.load_outputs)
    assert (first["accepted"], first["rejected"], first["duplicates"]) == (len(EVENTS), 1, 0)
    assert (second["accepted"], second["duplicates"]) == (0, len(EVENTS))
    assert deployment.admin.count("events") == len(EVENTS)
    assert deployment.admin.count("rejected") == 1
    raw, d = deployment.raw, deployment
    assert d.denied(WRITER, f"select payload from {raw}.events"), "the writer reads raw payloads"
    assert d.denied(WRITER, f"select * from {raw}.conversion_events")
    assert d.denied(WRITER, f"delete from {raw}.events")
    assert d.denied(WRITER, f"update {raw}.activity set user_id = 'x'")
    assert d.denied(WRITER, f"create table {raw}.extra (a int)")
    for name in d.marts:
        assert d.denied(WRITER, f"select * from {name}"), f"the writer reads {name}"


@needs_postgres
def test_the_transformer_builds_the_marts_but_cannot_write_raw_data(
    deployment: Deployment,
) -> None:
    d = deployment
    assert d.marts, "no models under models/marts were built"
    with d.connect("postgres") as conn:
        owners = {
            name: conn.execute(
                "select pg_get_userbyid(relowner) from pg_class where oid = %s::regclass", (name,)
            ).fetchone()[0]
            for name in d.marts
        }
    assert owners == dict.fromkeys(d.marts, TRANSFORMER)
    assert d.denied(TRANSFORMER, f"insert into {d.raw}.events (message_id) values ('x')")
    assert d.denied(TRANSFORMER, f"delete from {d.raw}.activity")


# `trackhouse query` of each capability: the reader must be able to run them all.
QUERIES = [
    ["active-users", "--start", "2024-05-01", "--end", "2024-05-03"],
    ["usage", "--calendar", "--as-of", VARS["as_of"]],
    ["usage", "--account", "acct-1", "--as-of", VARS["as_of"]],
    ["attribution", "--model", "last_touch", "--all"],
    ["statistics", "--metric", "users.user_count", "--period", "lifetime"],
]


@needs_postgres
@pytest.mark.parametrize("args", QUERIES, ids=" ".join)
def test_the_reader_can_run_the_queries(deployment: Deployment, args: list[str]) -> None:
    reader = as_role(deployment.pg, deployment.dbname, deployment.tmp / "reader", READER)
    as_reader = reader.cli("query", *args, "--format", "json").stdout
    assert json.loads(as_reader) == json.loads(
        deployment.admin.cli("query", *args, "--format", "json").stdout
    )


@needs_postgres
def test_the_reader_gets_the_list_of_metrics_for_an_unknown_one(deployment: Deployment) -> None:
    """The helpful error lists the registered metrics (the metric registry seed)."""
    args = ["query", "statistics", "--metric", "nope.nothing", "--period", "day"]
    reader = as_role(deployment.pg, deployment.dbname, deployment.tmp / "reader", READER)
    as_reader = reader.cli(*args, check=False)
    as_admin = deployment.admin.cli(*args, check=False)
    assert (as_reader.returncode, as_reader.stderr) == (as_admin.returncode, as_admin.stderr)
    assert "users.user_count" in as_reader.stderr


@needs_postgres
def test_the_reader_reads_every_mart_and_nothing_else(deployment: Deployment) -> None:
    d = deployment
    assert d.marts, "no models under models/marts were built"
    # The query API's plumbing, as the reader: the same rows the admin sees.
    reader = as_role(d.pg, d.dbname, d.tmp / "reader", READER)
    for name in d.marts:
        sql = f"select count(*) as n from {name}"
        assert reader.query(sql) == d.admin.query(sql), name
    assert d.denied(READER, f"select * from {d.raw}.events"), "the reader reads raw data"
    # Staging views read the raw tables with their owner's rights: not granted.
    assert d.staging
    for name in d.staging:
        assert d.denied(READER, f"select * from {name}"), f"the reader reads {name}"
    assert d.denied(READER, f"insert into {d.raw}.events (message_id) values ('x')")
    assert d.denied(READER, f"create table {d.mart_schema}.extra (a int)")
    for name in d.marts:
        assert d.denied(READER, f"delete from {name}"), f"the reader deletes from {name}"


def test_roles_on_duckdb_say_they_are_a_postgresql_feature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKHOUSE_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    settings = load_settings("duckdb", ROOT)
    with pytest.raises(TrackhouseError, match="roles are a PostgreSQL feature"):
        create_roles(settings)
    env = {
        **os.environ,
        "TRACKHOUSE_TARGET": "duckdb",
        "TRACKHOUSE_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
    }
    done = subprocess.run(
        [str(BIN / "trackhouse"), "init", "--roles"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "roles are a PostgreSQL feature" in done.stderr
