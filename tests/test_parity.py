"""DuckDB and PostgreSQL give the same answers: raw tables, every mart, the query API and CLI.

One demo dataset (fixed seed and end date, spanning a DST change) is loaded into a
DuckDB file and a PostgreSQL database and `dbt build` runs on both with the same
vars (a fixed `as_of`, a report time zone that is not UTC). Every mart in the dbt
manifest is then compared row by row. Rows are sorted by all columns; the only
normalisation is of representation (an aware timestamp is compared in UTC): values
must be equal as Python objects, so a Decimal on one side and a float on the other
is a difference.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from trackhouse.demo import write_demo_file
from trackhouse.engine import get_engine
from trackhouse.loader import load_files
from trackhouse.schema import DATA_TABLES

from conftest import ROOT, TARGETS, Warehouse

BIN = Path(sys.executable).parent
END = dt.date(2024, 4, 10)  # the demo's 50 days span the DST change of 2024-03-31
AS_OF = "2024-04-09"
TIMEZONE = "Europe/Amsterdam"
VARS = {"as_of": AS_OF, "report_timezone": TIMEZONE}
RECEIVED_AT = dt.datetime(2024, 4, 10, 6, 30)
MARTS_DIR = ROOT / "models" / "marts"
# Collected from the files so each mart is its own test; checked against the manifest.
MARTS = sorted(p.stem for p in MARTS_DIR.rglob("*.sql"))

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.xdist_group("parity"),
    pytest.mark.skipif(
        not {"duckdb", "postgres"} <= set(TARGETS),
        reason="parity needs both targets; TRACKHOUSE_TEST_TARGETS selects only "
        + ",".join(TARGETS),
    ),
]


# -- comparing rows ------------------------------------------------------------
def normalise(value: Any) -> Any:
    """Representation only: aware timestamps in UTC. Nothing else is converted."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def _sort_key(value: Any) -> tuple[Any, ...]:
    """A key that orders equal values the same way on both targets (None first)."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | Decimal):
        return (1, Decimal(value))
    if isinstance(value, float):
        return (1, Decimal(repr(value)))
    if isinstance(value, dt.datetime | dt.date | str):
        return (1, value.isoformat() if not isinstance(value, str) else value)
    return (1, orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def sorted_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    tuples = [tuple(normalise(v) for v in row.values()) for row in rows]
    return sorted(tuples, key=lambda row: tuple(_sort_key(v) for v in row))


def _types(rows: list[tuple[Any, ...]], width: int) -> list[str]:
    found: list[set[str]] = [set() for _ in range(width)]
    for row in rows:
        for i, value in enumerate(row):
            if value is not None:
                found[i].add(type(value).__name__)
    return ["|".join(sorted(t)) or "null" for t in found]


def assert_same_rows(
    name: str,
    left: list[dict[str, Any]],
    right: list[dict[str, Any]],
    labels: tuple[str, str] = ("duckdb", "postgres"),
) -> None:
    """Equal row by row; on failure say which columns differ, with values and types."""
    columns = list(left[0]) if left else list(right[0]) if right else []
    if left and right:
        assert list(left[0]) == list(right[0]), f"{name}: columns differ"
    a, b = sorted_rows(left), sorted_rows(right)
    if a == b:
        return
    lines = [f"{name}: {labels[0]} has {len(a)} rows, {labels[1]} {len(b)}"]
    types_a, types_b = _types(a, len(columns)), _types(b, len(columns))
    for col, ta, tb in zip(columns, types_a, types_b, strict=True):
        if ta != tb:
            lines.append(f"  column {col}: python type {ta} on {labels[0]}, {tb} on {labels[1]}")
    bad_columns: Counter[str] = Counter()
    examples: list[str] = []
    for ra, rb in zip(a, b, strict=False):
        if ra != rb:
            diff = [(c, x, y) for c, x, y in zip(columns, ra, rb, strict=True) if x != y]
            bad_columns.update(c for c, _, _ in diff)
            if len(examples) < 5:
                key = dict(zip(columns, ra, strict=True))
                examples.append(f"  row {key!r}\n    differs: {diff!r}")
    if bad_columns:
        lines.append(f"  columns that differ (count of sorted row pairs): {dict(bad_columns)}")
    only_a = Counter(a) - Counter(b)
    only_b = Counter(b) - Counter(a)
    lines.append(f"  rows only on {labels[0]}: {sum(only_a.values())}, e.g. {list(only_a)[:3]!r}")
    lines.append(f"  rows only on {labels[1]}: {sum(only_b.values())}, e.g. {list(only_b)[:3]!r}")
    raise AssertionError("\n".join(lines + examples))


# -- building both targets ---------------------------------------------------
def new_warehouse(target: str, env: dict[str, str], tmp: Path) -> Warehouse:
    """A Warehouse for a module fixture (the `warehouse` fixture is per test)."""
    env = {
        **env,
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        "DBT_PROFILES_DIR": str(ROOT),
        "TRACKHOUSE_LOCK_TIMEOUT": "30",
    }
    tmp.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:  # the profile renders from the environment
        for key, value in env.items():
            mp.setenv(key, value)
        return Warehouse(target=target, env=env, tmp=tmp)


def dbt_build(wh: Warehouse, target_path: Path, *args: str) -> dict[str, Any]:
    """`dbt build` with the parity vars into our own target path; returns the manifest."""
    wh.run(
        str(BIN / "dbt"), "build", *args,
        "--profiles-dir", str(ROOT), "--project-dir", str(ROOT),
        "--target-path", str(target_path), "--log-path", str(target_path),
        "--vars", orjson.dumps(VARS).decode(),
    )  # fmt: skip
    return json.loads((target_path / "manifest.json").read_text())


def run_results(target_path: Path) -> dict[str, str]:
    """What the last dbt command in `target_path` ran: unique_id -> status."""
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return {r["unique_id"]: r["status"] for r in results}


def manifest_marts(manifest: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every model under models/marts: name -> (schema, relation name)."""
    return {
        node["name"]: (node["schema"], node["alias"] or node["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["package_name"] == "trackhouse"
        and node["original_file_path"].replace(os.sep, "/").startswith("models/marts/")
    }


def pin_received_at(wh: Warehouse) -> None:
    """The one input that differs between two loads is when they ran: pin it."""
    with get_engine(wh.settings).begin() as conn:
        for table in DATA_TABLES:
            name = f'"{wh.settings.raw_schema}"."{table.name}"'
            conn.execute(sa.text(f"update {name} set received_at = :at"), {"at": RECEIVED_AT})


class Built:
    def __init__(self, wh: Warehouse, manifest: dict[str, Any]) -> None:
        self.wh = wh
        self.marts = manifest_marts(manifest)
        self.unit_tests = sorted(manifest.get("unit_tests", {}))
        self.results: dict[str, str] = {}  # unique_id -> status of the build

    def mart(self, name: str) -> list[dict[str, Any]]:
        schema, alias = self.marts[name]
        return self.wh.query(f'select * from "{schema}"."{alias}"')


@pytest.fixture(scope="module")
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Built]]:
    tmp = tmp_path_factory.mktemp("parity")
    data = tmp / "demo.ndjson"
    write_demo_file(data, users=60, days=50, seed=7, end=END)
    result: dict[str, Built] = {}
    for target in ("duckdb", "postgres"):
        if target == "duckdb":
            env = {"TRACKHOUSE_TARGET": "duckdb", "TRACKHOUSE_DUCKDB_PATH": str(tmp / "p.duckdb")}
        else:
            server = request.getfixturevalue("pg")
            dbname = f"th_parity_{uuid.uuid4().hex[:8]}"
            server.create_database(dbname)
            env = server.env(dbname)
        wh = new_warehouse(target, env, tmp / target)
        report = load_files([data], settings=wh.settings)
        assert report.accepted == report.received > 2000, report.summary()
        pin_received_at(wh)
        result[target] = Built(wh, dbt_build(wh, tmp / f"dbt-{target}"))
        result[target].results = run_results(tmp / f"dbt-{target}")
    yield result


# -- the comparisons ---------------------------------------------------------
@pytest.mark.parametrize("table", [t.name for t in DATA_TABLES])
def test_raw_tables_are_identical(built: dict[str, Built], table: str) -> None:
    """The bulk paths (DuckDB Arrow, PostgreSQL COPY) write the same rows."""
    rows = {target: b.wh.raw(table) for target, b in built.items()}
    if table != "rejected":
        assert rows["duckdb"], f"the demo data has no {table} rows: the comparison is empty"
    assert_same_rows(f"raw {table}", rows["duckdb"], rows["postgres"])


def test_every_mart_in_the_manifest_is_compared(built: dict[str, Built]) -> None:
    assert MARTS, "no models under models/marts: nothing to compare"
    for target, b in built.items():
        assert sorted(b.marts) == MARTS, f"{target}: manifest marts differ from the model files"


@pytest.mark.parametrize("mart", MARTS)
def test_mart_is_identical_on_both_targets(built: dict[str, Built], mart: str) -> None:
    duck, post = built["duckdb"].mart(mart), built["postgres"].mart(mart)
    assert duck, f"{mart} is empty on DuckDB: the demo data should fill it"
    assert_same_rows(mart, duck, post)


def test_the_parity_builds_run_every_unit_test(built: dict[str, Built]) -> None:
    """The dbt unit tests run here, once per target (the other tests' builds leave
    them out: they do not depend on what a warehouse holds)."""
    for target, b in built.items():
        assert len(b.unit_tests) > 50, f"{target}: the manifest lists few unit tests"
        ran = {u: b.results.get(u) for u in b.unit_tests}
        assert ran == dict.fromkeys(b.unit_tests, "pass"), target


# -- query API and CLI --------------------------------------------------------
def _query_module(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"trackhouse.query.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"trackhouse.query.{name}":
            return None
        raise


# (module, function, kwargs): the query API with the parity dates, time zone and as_of.
LOCAL = {"timezone": TIMEZONE, "as_of": AS_OF}
API_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("activity", "count_active_users", {}),
    ("activity", "count_active_users", {"start": "2024-03-25", "end": "2024-04-08T13:00Z"}),
    (
        "activity",
        "count_active_users",
        {
            "start": "2024-03-30",
            "end": "2024-04-02",
            "account_id": "acct-001",
            "timezone": TIMEZONE,
        },
    ),
    ("activity", "calendar_monthly_usage", {"start": "2024-02-01", **LOCAL}),
    ("activity", "subscription_usage", {"subscription_start": "2024-01-31", **LOCAL}),
    (
        "activity",
        "subscription_usage",
        {"account_id": "acct-002", "kind": "quarter", **LOCAL},
    ),
    ("activity", "daily_usage", {"start": "2024-03-28", "end": "2024-04-03", **LOCAL}),
    ("activity", "active_users_by_period", {"grain": "week", **LOCAL}),
    ("attribution", "attribute_conversions", {"model": "first_touch"}),
    (
        "attribution",
        "attribute_conversions",
        {"model": "last_touch", "window_days": 7, "source_windows": {"google": 2}},
    ),
    ("attribution", "attribute_conversions", {"model": "last_touch", "valid_only": False}),
    ("attribution", "attribution_credits", {"model": "data_driven", "valid_only": False}),
    ("attribution", "attribution_credits", {"model": "time_decay", "half_life_days": 3}),
    ("attribution", "attribution_by_channel", {"model": "position_based", "window_days": 14}),
    ("attribution", "attribute_conversions", {"model": "last_touch", "exclude_direct": True}),
    ("engagement", "retention", {"grain": "week"}),
    ("engagement", "stickiness", {"start": "2024-03-20"}),
    ("engagement", "lifecycle", {"grain": "month", "account_id": "acct-001"}),
    (
        "statistics",
        "statistics",
        {
            "metric": "activity.active_users",
            "period": "week",
            "start": dt.date(2024, 3, 20),
            "end": dt.date(2024, 4, 9),
        },
    ),
    (
        "statistics",
        "statistics",
        {
            "metric": "attribution.conversion_value",
            "period": "lifetime",
            "start": dt.date(2024, 3, 1),
            "end": dt.date(2024, 4, 9),
            "object": "currency",
        },
    ),
]


def _call_id(call: tuple[str, str, dict[str, Any]]) -> str:
    return f"{call[1]}({','.join(f'{k}={v}' for k, v in call[2].items())})"


@pytest.mark.parametrize("call", API_CALLS, ids=_call_id)
def test_query_api_answers_are_identical(
    built: dict[str, Built], call: tuple[str, str, dict[str, Any]]
) -> None:
    module_name, function_name, kwargs = call
    module = _query_module(module_name)
    function: Callable[..., Any] | None = getattr(module, function_name, None)
    assert function is not None, f"trackhouse.query.{module_name}.{function_name} is missing"
    answers = {t: function(**kwargs, settings=b.wh.settings) for t, b in built.items()}
    duck, post = answers["duckdb"], answers["postgres"]
    if isinstance(duck, list):
        assert_same_rows(_call_id(call), duck, post)
        assert duck, f"{_call_id(call)} is empty: pick arguments that return rows"
    else:
        assert duck == post and type(duck) is type(post), (duck, post)


LOCAL_ARGS = ["--timezone", TIMEZONE, "--as-of", AS_OF]
CLI_CALLS: list[list[str]] = [
    ["active-users", "--start", "2024-03-25", "--end", "2024-04-08", "--timezone", TIMEZONE],
    ["active-users", "--grain", "day", "--start", "2024-03-29", *LOCAL_ARGS],
    ["usage", "--calendar", *LOCAL_ARGS],
    ["usage", "--subscription-start", "2024-01-31", "--kind", "month", *LOCAL_ARGS],
    ["usage", "--account", "acct-001", "--kind", "quarter", *LOCAL_ARGS],
    ["attribution", "--model", "first_touch", "--window-days", "14", "--source-window", "bing=3"],
    ["attribution", "--model", "last_touch", "--all"],
    ["attribution", "--model", "data_driven", "--by", "channel"],
    ["attribution", "--model", "time_decay", "--half-life", "3", "--all"],
    ["statistics", "--metric", "users.user_count", "--period", "lifetime", "--by-object"],
]


@pytest.mark.parametrize("args", CLI_CALLS, ids=" ".join)
def test_cli_answers_are_identical(built: dict[str, Built], args: list[str]) -> None:
    outputs = {}
    for target, b in built.items():
        done: subprocess.CompletedProcess[str] = b.wh.cli("query", *args, "--format", "json")
        outputs[target] = json.loads(done.stdout)
    assert outputs["duckdb"], f"`trackhouse query {' '.join(args)}` answered nothing"
    assert_same_rows(" ".join(args), outputs["duckdb"], outputs["postgres"])
