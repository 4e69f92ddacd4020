"""trackhouse installed as a dbt package, as a user would do it.

A scratch consumer project (`packages.yml` with `local:` pointing at this
repository) has models of its own named like ours — `touchpoints` (aliased) and
`conversions` (its own schema) — sets the raw schema by a dbt var, and extends
the metric registry with a seed of its own. `dbt deps` + `dbt build` on DuckDB
must build trackhouse's marts from trackhouse's models only and leave the
consumer's models as the consumer wrote them. DuckDB only: the package mechanics
do not depend on the engine, and the marts' engine parity is test_parity's job.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import textwrap
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import pytest

from trackhouse.loader import load_files
from trackhouse.settings import load_settings

from conftest import BIN, ROOT
from factories import identify, page, statistic, track

pytestmark = pytest.mark.xdist_group("dbt_package")

SHOP = "https://shop.example"
RAW_SCHEMA = "shop_raw"  # not trackhouse_raw: only the var can point the package at it

EVENTS = [
    identify("2024-04-10T12:00:00Z", "carol", anonymous_id="carol-laptop"),
    page(
        "2024-05-02T09:00:00Z",
        f"{SHOP}/?utm_source=google&utm_medium=cpc&gclid=G1",
        anonymous_id="bob-laptop",
        message_id="bob-google",
    ),
    identify("2024-05-02T09:30:00Z", "bob", anonymous_id="bob-laptop"),
    page(
        "2024-05-06T09:00:00Z",
        f"{SHOP}/shoes?utm_source=newsletter&utm_medium=email",
        anonymous_id="bob-phone",
        message_id="bob-newsletter",
    ),
    identify("2024-05-06T09:30:00Z", "bob", anonymous_id="bob-phone"),
    track(
        "2024-05-07T09:00:00Z",
        "purchase",
        user_id="bob",
        message_id="bob-purchase-event",
        conversion_id="bob-purchase",
        value="49.90",
        currency="EUR",
    ),
    statistic("2024-05-08T00:00:00Z", "shop.order_count", 3, "day", "2024-05-07"),
]

FILES = {
    "dbt_project.yml": """
        name: shop
        version: "1.0.0"
        config-version: 2
        profile: shop
        flags:
          # dbt-core writes a generic test (unique, not_null) as ref('<model>') with
          # one argument, resolved in the root project first unless this flag is on:
          # without it trackhouse's tests of `touchpoints` would test ours (README).
          require_ref_searches_node_package_before_root: true
        vars:
          trackhouse_raw_schema: shop_raw
          trackhouse_metrics_seeds: [shop_metrics]
          trackhouse_domains_seeds: [shop_domains]
          as_of: "2024-05-10"
        models:
          shop:
            +materialized: table
    """,
    "packages.yml": f"""
        packages:
          - local: {ROOT}
    """,
    # The consumer's own models, named like trackhouse's marts.
    "models/touchpoints.sql": """
        {{ config(alias='shop_touchpoints') }}
        select 'shop-tp-1' as touchpoint_id, 'shop' as made_by
    """,
    "models/conversions.sql": """
        {{ config(schema='shop') }}
        select 'shop-order-1' as conversion_id, 'not a trackhouse column' as note
    """,
    # One-argument refs in the ROOT project still mean the consumer's own models;
    # trackhouse's marts are read with the package name.
    "models/shop_report.sql": """
        select
            own.conversion_id as own_conversion_id,
            (select count(*) from {{ ref('touchpoints') }}) as own_touchpoints,
            (select count(*) from {{ ref('trackhouse', 'conversions') }}) as trackhouse_conversions
        from {{ ref('conversions') }} as own
    """,
    "seeds/shop_metrics.csv": """
        domain,ref,name,description
        shop,order_count,Orders,"Orders placed. By country."
    """,
    "seeds/shop_domains.csv": """
        ref,name
        shop,Shop
    """,
}


def _write_project(project: Path, duckdb_path: Path) -> None:
    for name, text in FILES.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    profile = {"shop": {"target": "dev", "outputs": {"dev": {
        "type": "duckdb", "path": str(duckdb_path), "schema": "main", "threads": 1,
    }}}}  # fmt: skip
    (project / "profiles.yml").write_text(json.dumps(profile))


def _consumer_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKHOUSE_", "DBT_"))}
    return env | {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PROFILES_DIR": str(project)}


def _dbt(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = _consumer_env(project)
    proc = subprocess.run(
        [str(BIN / "dbt"), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        command = " ".join(args)
        raise AssertionError(f"dbt {command} exited {proc.returncode}\n{proc.stdout[-8000:]}")
    return proc


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.sql(sql).fetchall()


@pytest.fixture(scope="module")
def consumer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The consumer project after `dbt deps` and `dbt build`, and its DuckDB file."""
    tmp = tmp_path_factory.mktemp("consumer")
    project, db = tmp / "shop", tmp / "shop.duckdb"
    _write_project(project, db)
    # The application's loader writes the raw tables into schema shop_raw of the file.
    events = tmp / "events.ndjson"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in EVENTS))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRACKHOUSE_DUCKDB_PATH", str(db))
        mp.setenv("TRACKHOUSE_RAW_SCHEMA", RAW_SCHEMA)
        report = load_files([events], settings=load_settings("duckdb", ROOT), progress=False)
    assert report.accepted == len(EVENTS), report
    _dbt(project, "deps")
    _dbt(project, "build")
    return project, db


def _foreign_dependencies(manifest: dict) -> dict[str, list[str]]:
    """trackhouse's nodes (models, tests, unit tests) that depend on a consumer model."""
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    ours = {k: n for k, n in nodes.items() if n["package_name"] == "trackhouse"}
    assert "model.trackhouse.conversion_attribution" in ours
    foreign = {
        key: [d for d in node["depends_on"].get("nodes", []) if d.startswith("model.shop.")]
        for key, node in ours.items()
    }
    return {key: deps for key, deps in foreign.items() if deps}


@pytest.mark.slow
def test_trackhouse_nodes_depend_only_on_trackhouse_models(consumer: tuple[Path, Path]) -> None:
    project, _ = consumer
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    assert _foreign_dependencies(manifest) == {}, "trackhouse nodes read the consumer's models"
    assert manifest["nodes"]["model.shop.touchpoints"]["depends_on"]["nodes"] == []
    report = manifest["nodes"]["model.shop.shop_report"]["depends_on"]["nodes"]
    assert sorted(report) == [
        "model.shop.conversions",
        "model.shop.touchpoints",
        "model.trackhouse.conversions",
    ]


@pytest.mark.slow
def test_marts_are_built_from_trackhouse_models(consumer: tuple[Path, Path]) -> None:
    _, db = consumer
    assert _rows(db, "select touchpoint_id from main.touchpoints order by 1") == [
        ("bob-google",),
        ("bob-newsletter",),
    ]
    assert _rows(db, "select conversion_id, stitched_id, value from main.conversions") == [
        ("bob-purchase", "bob", Decimal("49.90")),
    ]
    attributed = _rows(
        db,
        "select attribution_model, touchpoint_id, utm_source from main.conversion_attribution"
        " order by 1",
    )
    assert attributed == [
        ("first_touch", "bob-google", "google"),
        ("last_touch", "bob-newsletter", "newsletter"),
    ]
    credited = _rows(db, "select distinct touchpoint_id from main.attribution_credits order by 1")
    assert credited == [("bob-google",), ("bob-newsletter",)]


@pytest.mark.slow
def test_consumer_models_are_intact(consumer: tuple[Path, Path]) -> None:
    _, db = consumer
    assert _rows(db, "select * from main.shop_touchpoints") == [("shop-tp-1", "shop")]
    assert _rows(db, "select * from main_shop.conversions") == [
        ("shop-order-1", "not a trackhouse column")
    ]
    assert _rows(db, "select * from main.shop_report") == [("shop-order-1", 1, 1)]


@pytest.mark.slow
def test_registry_extended_by_the_root_project(consumer: tuple[Path, Path]) -> None:
    project, db = consumer
    metrics = _rows(db, "select domain, ref, registered_in from main.trackhouse_metrics")
    assert ("shop", "order_count", "shop_metrics") in metrics
    assert ("activity", "active_users", "trackhouse") in metrics
    domains = _rows(db, "select ref, registered_in from main.trackhouse_domains order by 1")
    assert ("shop", "shop_domains") in domains
    assert ("users", "trackhouse") in domains
    # The recorded statistic of the consumer's metric lands in the mart, and the
    # relationships test to the registry passes (it only warns on unregistered metrics).
    recorded = _rows(
        db,
        "select value from main.statistics_by_date where domain = 'shop'"
        " and metric = 'order_count' and period = 'day' and date = '2024-05-07'",
    )
    assert recorded == [(3,)]
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    registry_tests = [
        r for r in results if "relationships_statistics_by_date_domain_metric" in r["unique_id"]
    ]
    assert registry_tests and {r["status"] for r in registry_tests} == {"pass"}


def _mf_query(project: Path, *args: str) -> list[dict[str, str]]:
    """`mf query ... --csv` (MetricFlow) in the consumer project, as rows."""
    out = project / "target" / "mf.csv"
    proc = subprocess.run(
        [str(BIN / "mf"), "query", *args, "--csv", str(out)],
        cwd=project,
        env=_consumer_env(project),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and out.is_file(), proc.stdout[-4000:] + proc.stderr[-4000:]
    with out.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_semantic_layer_gives_the_marts_numbers(consumer: tuple[Path, Path]) -> None:
    """MetricFlow's metrics (models/semantic) over the package: the rolling active
    users equal statistics_by_date's periods, conversions by currency the mart's."""
    project, db = consumer
    windows = {"week": "7", "days_28": "28", "month": "30"}
    rows = _mf_query(
        project,
        "--metrics",
        ",".join(f"active_users_{days}_days" for days in windows.values()),
        "--group-by",
        "metric_time__day",
        "--start-time",
        "2024-05-02",
        "--end-time",
        "2024-05-10",
    )
    semantic = {
        (period, row["metric_time__day"][:10]): int(float(row[f"active_users_{days}_days"]))
        for row in rows
        for period, days in windows.items()
    }
    mart = {
        (period, str(day)): int(value)
        for period, day, value in _rows(
            db,
            "select period, date, value from main.statistics_by_date"
            " where metric = 'active_users' and period in ('week', 'days_28', 'month')"
            " and date between '2024-05-02' and '2024-05-10'",
        )
    }
    assert semantic == mart
    # carol (10 April) is inside 28 days of 2 May, not of 8 May; inside 30 days of both.
    assert [semantic[(p, "2024-05-02")] for p in windows] == [1, 2, 2]
    assert [semantic[(p, "2024-05-08")] for p in windows] == [1, 1, 2]
    by_currency = _mf_query(
        project,
        "--metrics",
        "conversion_count,conversion_value",
        "--group-by",
        "conversion__currency",
    )
    assert [
        (r["conversion__currency"], int(r["conversion_count"]), Decimal(r["conversion_value"]))
        for r in by_currency
    ] == [("EUR", 1, Decimal("49.90"))]


@pytest.mark.slow
def test_without_the_flag_only_generic_tests_are_shadowed(consumer: tuple[Path, Path]) -> None:
    """dbt's default ref resolution: trackhouse's models still read only trackhouse's
    models (two-argument refs); only the generic tests dbt-core generates from the
    yml resolve `touchpoints` / `conversions` to the consumer's models (README)."""
    project, _ = consumer
    config = project / "dbt_project.yml"
    original = config.read_text()
    target = project / "target-default-flags"
    config.write_text(original.replace("before_root: true", "before_root: false"))
    try:
        _dbt(project, "parse", "--target-path", str(target))
    finally:
        config.write_text(original)
    manifest = json.loads((target / "manifest.json").read_text())
    shadowed = _foreign_dependencies(manifest)
    assert shadowed, "expected dbt-core's one-argument refs in generic tests"
    assert all(key.startswith("test.trackhouse.") for key in shadowed), shadowed
    assert {dep for deps in shadowed.values() for dep in deps} == {
        "model.shop.touchpoints",
        "model.shop.conversions",
    }


@pytest.mark.slow
def test_intermediate_models_are_private(consumer: tuple[Path, Path]) -> None:
    project, _ = consumer
    peek = project / "models" / "peek.sql"
    peek.write_text("select * from {{ ref('trackhouse', 'int_touchpoints_cleaned') }}\n")
    try:
        proc = _dbt(project, "parse", check=False)
    finally:
        peek.unlink()
    assert proc.returncode != 0
    assert "int_touchpoints_cleaned" in proc.stdout
    assert "private to the 'attribution' group" in proc.stdout


def _package_refs_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("package_refs", ROOT / "scripts/package_refs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_ref_of_our_own_nodes_names_the_package() -> None:
    """After any merge: `python scripts/package_refs.py` fixes what this finds."""
    proc = subprocess.run(
        [str(BIN / "python"), str(ROOT / "scripts/package_refs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_refs_rewrite() -> None:
    package_refs = _package_refs_module()
    names = {"touchpoints", "conversions"}
    sql = "select * from {{ ref('touchpoints') }} join {{ ref(\"conversions\") }}"
    sql += " join {{ ref('shop_orders') }} join {{ ref(model_name) }}"
    rewritten = package_refs.rewrite(sql, "trackhouse", names)
    assert rewritten == (
        "select * from {{ ref('trackhouse', 'touchpoints') }}"
        ' join {{ ref("trackhouse", "conversions") }}'
        " join {{ ref('shop_orders') }} join {{ ref(model_name) }}"
    )
    assert package_refs.rewrite(rewritten, "trackhouse", names) == rewritten
    yml = "      - input: ref('touchpoints')\n      - {input: ref('conversions'), rows: []}\n"
    assert package_refs.rewrite(yml, "trackhouse", names, yaml=True) == (
        "      - input: ref('trackhouse', 'touchpoints')\n"
        "      - {input: \"ref('trackhouse', 'conversions')\", rows: []}\n"
    )
