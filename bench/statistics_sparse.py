"""Sparse by-object statistics (issue 16): rows and build time of
statistics_by_date_and_object, dense (the project at --base) and sparse (this
checkout), in the same run on the same data, and the query API's answers from
both.

    .venv/bin/python bench/statistics_sparse.py [--events 2000000] [--conversions 200000]
        [--users 50000] [--touchpoints 100000] [--typo-sources 2000] [--base 860baca] [--keep]

The raw rows are bench/statistics.py's (a year of activity, users in 2,000
accounts, conversions, touchpoints from 20 sources) plus `--typo-sources`
touchpoints whose utm_source appears once each (misspellings, tracking noise:
the unbounded case). The models upstream of the marts are built once with this
checkout; the warehouse is then copied, and each copy gets its own project's
statistics models: a full build (as_of Dec 30), one more day of events and an
incremental build (as_of Dec 31). Model execution times are dbt's; the sparse
side's build includes statistics_object_series (the series the API fills in).
Then the same by-object queries go to both: the old API's query on the dense
mart, and trackhouse.query.statistics on the sparse one; their rows are
compared. Prints JSON and writes bench/results/statistics_sparse.json. Not a
test: nothing about speed is asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from _common import duckdb_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEZONE = "Europe/Amsterdam"
AS_OF_FULL = "2024-12-30"
AS_OF_INCREMENTAL = "2024-12-31"
BY_OBJECT = "statistics_by_date_and_object"
SERIES = "statistics_object_series"
UPSTREAM = ("--select", f"+{BY_OBJECT}", "--exclude", BY_OBJECT, SERIES)
QUERIES = [  # metric, period, object type, start, end
    ("users.user_count", "lifetime", "account", "2024-06-01", "2024-12-31"),
    ("activity.active_users", "month", "account", "2024-12-01", "2024-12-31"),
    ("attribution.touchpoint_count", "week", "utm_source", "2024-01-01", "2024-12-31"),
    ("attribution.touchpoint_count", "lifetime", "utm_source", "2024-12-01", "2024-12-31"),
    ("attribution.conversion_value", "day", "currency", None, None),
]


def base_bench() -> Any:
    """bench/statistics.py (its generator), loaded under a name that is not the stdlib's."""
    spec = importlib.util.spec_from_file_location("bench_statistics", ROOT / "bench/statistics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_typo_sources(db: Path, count: int) -> None:
    """`count` touchpoints whose utm_source is seen once, spread over the year."""
    con = duckdb.connect(str(db))
    try:
        con.execute(
            f"""
            insert into trackhouse_raw.touchpoints
            select
                'typo-tp' || i, 'typo-anon' || i, null,
                timestamp '2024-01-01 12:00:00' + to_seconds(i * (364 * 86400 // {count})),
                'https://shop.example/landing?utm_source=gogle' || i, null,
                'Mozilla/5.0 (X11)', null, now()::timestamp, 1
            from range({count}) as t (i)
            """
        )
    finally:
        con.close()


def dbt(project: Path, db: Path, target_dir: Path, as_of: str, *args: str) -> dict[str, float]:
    """Wall-clock seconds of a dbt command and the execution time of each model."""
    env = {**duckdb_env(db), "DBT_PROFILES_DIR": str(project)}
    cmd = [
        str(BIN / "dbt"),
        *args,
        "--project-dir",
        str(project),
        "--target-path",
        str(target_dir),
        "--log-path",
        str(target_dir),
        "--vars",
        json.dumps({"report_timezone": TIMEZONE, "as_of": as_of, "lookback_days": 3}),
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-2000:]}")
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    times = {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}
    return {"wall_s": elapsed, **times}


def rows_by_metric(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = con.execute(
            f"select metric, count(*) from main.{BY_OBJECT} group by metric order by metric"
        ).fetchall()
        return {metric: n for metric, n in found}
    finally:
        con.close()


def dense_answer(db: Path, query: tuple) -> tuple[float, set[tuple]]:
    """What the old API returned: the dense mart's rows, filtered and ordered."""
    metric, period, object_type, start, end = query
    domain, ref = metric.split(".")
    where = [f"domain = '{domain}'", f"metric = '{ref}'", f"period = '{period}'"]
    where.append(f"object_type = '{object_type}'")
    if start:
        where.append(f"date >= date '{start}'")
    if end:
        where.append(f"date <= date '{end}'")
    con = duckdb.connect(str(db), read_only=True)
    try:
        started = time.perf_counter()
        found = con.execute(
            f"select date, object_type, object_id, value from main.{BY_OBJECT} "
            f"where {' and '.join(where)} order by date, object_type, object_id"
        ).fetchall()
        elapsed = time.perf_counter() - started
    finally:
        con.close()
    return elapsed, {(d, t, o, Decimal(v)) for d, t, o, v in found}


def sparse_answer(db: Path, query: tuple) -> tuple[float, set[tuple]]:
    """The query API (trackhouse.query.statistics) on the sparse mart."""
    from trackhouse.query.statistics import statistics
    from trackhouse.settings import load_settings

    os.environ.update(duckdb_env(db))
    metric, period, object_type, start, end = query
    settings = load_settings()
    started = time.perf_counter()
    found = statistics(metric, period, start, end, object=object_type, settings=settings)
    elapsed = time.perf_counter() - started
    return elapsed, {
        (r["date"], r["object_type"], r["object_id"], Decimal(r["value"])) for r in found
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--conversions", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--touchpoints", type=int, default=100_000)
    parser.add_argument("--typo-sources", type=int, default=2_000)
    parser.add_argument("--base", default="860baca", help="the commit with the dense mart")
    parser.add_argument("--keep", action="store_true", help="keep the temporary warehouses")
    args = parser.parse_args()
    base = base_bench()

    tmp = Path(tempfile.mkdtemp(prefix="trackhouse-bench-sparse-"))
    old_project = tmp / "dense-project"
    old_project.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", args.base], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old_project)], input=archive, check=True)
    projects = {"dense": old_project, "sparse": ROOT}
    results: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "keep"}
    try:
        db = tmp / "bench.duckdb"
        base.generate(db, args.events, args.conversions, args.users, args.touchpoints)
        add_typo_sources(db, args.typo_sources)
        dbt(ROOT, db, tmp / "target-upstream", AS_OF_FULL, "seed")
        dbt(ROOT, db, tmp / "target-upstream", AS_OF_FULL, "run", *UPSTREAM)
        for name, project in projects.items():
            copy, target = tmp / f"{name}.duckdb", tmp / f"target-{name}"
            shutil.copy(db, copy)
            models = [BY_OBJECT] + ([SERIES] if name == "sparse" else [])
            full = dbt(project, copy, target, AS_OF_FULL, "run", "--select", *models)
            base.add_day(copy, args.events, args.conversions, args.users)
            dbt(ROOT, copy, tmp / "target-upstream", AS_OF_INCREMENTAL, "run", *UPSTREAM)
            daily = dbt(project, copy, target, AS_OF_INCREMENTAL, "run", "--select", *models)
            rows = rows_by_metric(copy)
            results[name] = {
                "rows": sum(rows.values()),
                "rows_by_metric": rows,
                "full_build_s": round(sum(full.get(m, 0) for m in models), 2),
                "full_build_by_model_s": {m: round(full[m], 2) for m in models},
                "full_build_wall_s": round(full["wall_s"], 2),
                "daily_incremental_s": round(sum(daily.get(m, 0) for m in models), 2),
                "daily_incremental_by_model_s": {m: round(daily[m], 2) for m in models},
                "daily_incremental_wall_s": round(daily["wall_s"], 2),
            }
        if args.keep:
            results["warehouses"] = str(tmp)
        answers = []
        for query in QUERIES:
            dense_s, dense_rows = dense_answer(tmp / "dense.duckdb", query)
            sparse_s, sparse_rows = sparse_answer(tmp / "sparse.duckdb", query)
            answers.append(
                {
                    "query": list(query),
                    "rows": len(dense_rows),
                    "rows_differing": len(dense_rows ^ sparse_rows),
                    "dense_sql_s": round(dense_s, 3),
                    "sparse_api_s": round(sparse_s, 3),
                }
            )
        results["answers"] = answers
        results["rows_sparse_over_dense"] = round(
            results["sparse"]["rows"] / results["dense"]["rows"], 3
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "bench/results/statistics_sparse.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
