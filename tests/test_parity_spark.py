"""Apache Spark gives the same answers as DuckDB: raw tables, every mart, the query API and CLI.

The third target of tests/test_parity.py, in a module of its own so that it runs
beside the PostgreSQL comparison (its own xdist group). The same demo data, vars
and comparisons: rows equal as Python objects, sorted by all columns.

Spark runs in this test process (pyspark, local[2], a Derby metastore and Parquet
warehouse in a temporary directory): the loader, `dbt build` (dbt's programmatic
runner; dbt-spark's `method: session` takes the process's SparkSession) and the
query API and CLI share the one session, because an embedded Derby metastore
admits one process at a time. `make demo` runs the same steps as one process
after another. Unit tests are disabled on Spark (dbt_project.yml): their fixtures
are typed for DuckDB and PostgreSQL; the logic they test is the one compared here.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from test_parity import (
    API_CALLS,
    CLI_CALLS,
    END,
    MARTS,
    RECEIVED_AT,
    VARS,
    Built,
    _call_id,
    _query_module,
    assert_same_rows,
    dbt_build,
    new_warehouse,
)

from trackhouse.demo import write_demo_file
from trackhouse.engine import get_engine
from trackhouse.loader import load_files
from trackhouse.schema import ALL_TABLES

from conftest import ROOT, TARGETS, Warehouse

LABELS = ("duckdb", "spark")
# The raw tables a load fills (batches holds commit times: compared by count).
RAW = [t for t in ALL_TABLES if "received_at" in t.c]
# What a build may report besides success: the `relationships` tests that warn on the
# demo data (they warn on DuckDB too) and the exposure (NO-OP: nothing to build).
ACCEPTED_STATUSES = {"success", "pass", "warn", "no-op"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    # One worker runs the whole module: one SparkSession, one build.
    pytest.mark.xdist_group("parity-spark"),
    # In `make test` (default targets); left out when TRACKHOUSE_TEST_TARGETS omits spark.
    pytest.mark.skipif(
        "spark" not in TARGETS,
        reason="TRACKHOUSE_TEST_TARGETS=" + ",".join(TARGETS) + " does not include spark",
    ),
]


def dbt_build_in_process(wh: Warehouse, target_path: Path) -> tuple[dict[str, Any], list[str]]:
    """`dbt build` through dbt's programmatic runner, in this process's SparkSession;
    the manifest and what did not succeed ("unique_id: status message")."""
    from dbt.cli.main import dbtRunner

    args = [
        "build",
        "--profiles-dir", str(ROOT), "--project-dir", str(ROOT),
        "--target-path", str(target_path), "--log-path", str(target_path),
        "--vars", orjson.dumps(VARS).decode(), "--target", "spark", "--quiet",
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for key, value in wh.env.items():
            mp.setenv(key, value)
        result = dbtRunner().invoke(args)
    failed = [
        f"{r.node.unique_id}: {r.status} {r.message}"
        for r in (result.result or [])
        if str(r.status) not in ACCEPTED_STATUSES
    ]
    assert result.result is not None, f"dbt build on Spark did not run: {result.exception}"
    return json.loads((target_path / "manifest.json").read_text()), failed


def pin_received_at_spark(wh: Warehouse) -> None:
    from trackhouse import spark

    session = spark.session(wh.settings)
    for table in RAW:
        name = f"`{wh.settings.raw_schema}`.`{table.name}`"
        columns = [
            f"timestamp_ntz'{RECEIVED_AT.isoformat(sep=' ')}' as received_at"
            if c.name == "received_at"
            else f"`{c.name}`"
            for c in table.columns
        ]
        rows = session.sql(f"select {', '.join(columns)} from {name}").localCheckpoint()
        rows.write.insertInto(name, overwrite=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Built]]:
    if shutil.which("java") is None:
        pytest.fail(
            "Spark needs a Java runtime and none is on PATH: run `make system-deps` "
            "(installs default-jre-headless), or leave Spark out with "
            "TRACKHOUSE_TEST_TARGETS=duckdb,postgres"
        )
    tmp = tmp_path_factory.mktemp("parity-spark")
    data = tmp / "demo.ndjson"
    write_demo_file(data, users=60, days=50, seed=7, end=END)
    result: dict[str, Built] = {}
    duck_env = {"TRACKHOUSE_TARGET": "duckdb", "TRACKHOUSE_DUCKDB_PATH": str(tmp / "p.duckdb")}
    duck = new_warehouse("duckdb", duck_env, tmp / "duckdb")
    load_files([data], settings=duck.settings)
    load_files([data], settings=duck.settings)  # as on Spark below: a second batch, all known
    with get_engine(duck.settings).begin() as conn:
        for table in RAW:
            name = f'"{duck.settings.raw_schema}"."{table.name}"'
            conn.execute(sa.text(f"update {name} set received_at = :at"), {"at": RECEIVED_AT})
    # The unit tests ran in tests/test_parity.py's DuckDB build; the marts are what count here.
    manifest = dbt_build(duck, tmp / "dbt-duckdb", "--exclude-resource-type", "unit_test")
    result["duckdb"] = Built(duck, manifest)

    spark_env = {
        "TRACKHOUSE_TARGET": "spark",
        "TRACKHOUSE_SPARK_DIR": str(tmp / "spark"),
        "TRACKHOUSE_SPARK_SHUFFLE_PARTITIONS": "2",
    }
    wh = new_warehouse("spark", spark_env, tmp / "spark-wh")
    report = load_files([data], settings=wh.settings)
    assert report.accepted == report.received > 2000, report.summary()
    again = load_files([data], settings=wh.settings)
    assert again.duplicates == again.received and again.accepted == 0, again.summary()
    pin_received_at_spark(wh)
    manifest, failed = dbt_build_in_process(wh, tmp / "dbt-spark")
    result["spark"] = Built(wh, manifest)
    result["spark"].failed = failed  # type: ignore[attr-defined]
    yield result
    from trackhouse import spark

    spark.session(wh.settings).stop()


@pytest.mark.parametrize("table", [t.name for t in RAW])
def test_raw_tables_are_identical_on_spark(built: dict[str, Built], table: str) -> None:
    rows = {target: b.wh.raw(table) for target, b in built.items()}
    if table != "rejected":
        assert rows["duckdb"], f"the demo data has no {table} rows: the comparison is empty"
    assert_same_rows(f"raw {table}", rows["duckdb"], rows["spark"], LABELS)


def test_every_mart_is_built_on_spark(built: dict[str, Built]) -> None:
    assert sorted(built["spark"].marts) == MARTS


def test_dbt_build_and_data_tests_pass_on_spark(built: dict[str, Built]) -> None:
    failed: list[str] = built["spark"].failed  # type: ignore[attr-defined]
    assert not failed, "on Spark:\n" + "\n".join(failed)


@pytest.mark.parametrize("mart", MARTS)
def test_mart_is_identical_on_spark(built: dict[str, Built], mart: str) -> None:
    duck, spark = built["duckdb"].mart(mart), built["spark"].mart(mart)
    assert duck, f"{mart} is empty on DuckDB: the demo data should fill it"
    assert_same_rows(mart, duck, spark, LABELS)


@pytest.mark.parametrize("call", API_CALLS, ids=_call_id)
def test_query_api_answers_are_identical_on_spark(
    built: dict[str, Built], call: tuple[str, str, dict[str, Any]]
) -> None:
    module_name, function_name, kwargs = call
    function = getattr(_query_module(module_name), function_name)
    answers = {t: function(**kwargs, settings=b.wh.settings) for t, b in built.items()}
    duck, spark = answers["duckdb"], answers["spark"]
    if isinstance(duck, list):
        assert duck, f"{_call_id(call)} is empty: pick arguments that return rows"
        assert_same_rows(_call_id(call), duck, spark, LABELS)
    else:
        assert duck == spark and type(duck) is type(spark), (duck, spark)


def _cli_in_process(wh: Warehouse, args: list[str]) -> str:
    from trackhouse.cli import main

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        for key, value in wh.env.items():
            mp.setenv(key, value)
        code = main(["query", *args, "--format", "json"])
    assert code in (0, None), f"trackhouse query {' '.join(args)} exited {code}"
    return out.getvalue()


@pytest.mark.parametrize("args", CLI_CALLS, ids=" ".join)
def test_cli_answers_are_identical_on_spark(built: dict[str, Built], args: list[str]) -> None:
    duck = json.loads(built["duckdb"].wh.cli("query", *args, "--format", "json").stdout)
    spark = json.loads(_cli_in_process(built["spark"].wh, args))
    assert duck, f"`trackhouse query {' '.join(args)}` answered nothing"
    assert_same_rows(" ".join(args), duck, spark, LABELS)
