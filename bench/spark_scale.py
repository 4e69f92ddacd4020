"""Spark at the issue's size (issue 18): N activity events and N/10 touchpoints, full
and incremental `dbt build` on Spark `local[2]` against DuckDB on the same machine,
side by side in one run, at N and at 2N.

    .venv/bin/python bench/spark_scale.py [--events 10000000] [--sizes 1,2]

The raw rows are generated in DuckDB SQL (bench/activity.py's generator: a year of
activity, users and accounts; bench/attribution.py's: touchpoints, conversions at a
tenth of the touchpoints, identity links), because the demo generator holds every
event in memory and `trackhouse load` of 10M lines is not what is measured here
(bench/spark.py times loads at the demo's size). Spark gets the very same rows:
each raw table is written to Parquet by DuckDB and inserted into the Spark raw
table (created by trackhouse, as `trackhouse load` does). Then, on each target: a
full `dbt build` (models and data tests, no unit tests), one more day of activity
events (N/365, load_sequence 2) copied the same way, and the incremental build.
Each step is its own process, one after another. Prints a table with the
slowest models of each build and writes bench/results/spark_scale.json. Not a
test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from _common import timed_process

sys.path.insert(0, str(Path(__file__).resolve().parent))
import activity
import attribution

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
VARS = json.dumps(
    {"report_timezone": activity.TIMEZONE, "as_of": activity.AS_OF, "lookback_days": 3}
)
RAW_COUNTED = ("activity", "touchpoints", "conversion_events", "identity_links", "users")


def generate(db: Path, events: int) -> dict[str, int]:
    """Raw rows for `events` activity events and events/10 touchpoints."""
    users = max(events // 100, 1_000)
    activity.generate(db, events, users)
    touchpoints = events // 10
    attribution.generate(db, touchpoints, touchpoints // 10, max(touchpoints // 7, 100))
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            t: con.execute(f"select count(*) from trackhouse_raw.{t}").fetchone()[0]  # type: ignore[index]
            for t in RAW_COUNTED
        }


def export(db: Path, folder: Path, load_sequence: int) -> list[str]:
    """Write the raw rows of one load_sequence to folder/<table>.parquet; the table names."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    written = []
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.columns "
                "where table_schema = 'trackhouse_raw' and column_name = 'load_sequence'"
            ).fetchall()
        ]
        for table in sorted(tables):
            where = f"from trackhouse_raw.{table} where load_sequence = {load_sequence}"
            if con.execute(f"select count(*) {where}").fetchone()[0]:  # type: ignore[index]
                con.execute(
                    f"copy (select * {where}) to '{folder / table}.parquet' (format parquet)"
                )
                written.append(table)
    return written


def copy_into_spark(folder: Path) -> None:
    """(Run in its own process, target spark.) Insert folder/*.parquet into the raw tables."""
    from trackhouse.settings import load_settings
    from trackhouse.spark import ensure_raw_tables, session

    settings = load_settings()
    ensure_raw_tables(settings)
    spark = session(settings)
    for path in sorted(folder.glob("*.parquet")):
        name = f"`{settings.raw_schema}`.`{path.stem}`"
        fields = spark.table(name).schema.fields
        df = spark.read.parquet(str(path))
        df.select([df[f.name].cast(f.dataType).alias(f.name) for f in fields]).write.insertInto(
            name
        )


def run(cmd: list[str], env: dict[str, str], label: str) -> float:
    return timed_process(cmd, env, label)[0]


def build(env: dict[str, str], target_dir: Path, label: str) -> dict[str, Any]:
    cmd = [
        str(BIN / "dbt"), "build", "--exclude", "resource_type:unit_test",
        "--profiles-dir", str(ROOT), "--project-dir", str(ROOT),
        "--target-path", str(target_dir), "--log-path", str(target_dir), "--vars", VARS,
    ]  # fmt: skip
    seconds = run(cmd, env, label)
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    models = sorted(
        (
            (r["unique_id"].split(".")[-1], round(r["execution_time"], 2))
            for r in results
            if r["unique_id"].startswith("model.")
        ),
        key=lambda item: -item[1],
    )
    return {
        "seconds": round(seconds, 1),
        "models_seconds": round(sum(t for _, t in models), 1),
        "tests_seconds": round(
            sum(r["execution_time"] for r in results if r["unique_id"].startswith("test.")), 1
        ),
        "slowest_models": models[:6],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="N activity events")
    parser.add_argument("--sizes", default="1,2", help="multiples of N to run (default 1,2)")
    parser.add_argument("--copy-into-spark", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.copy_into_spark:
        copy_into_spark(args.copy_into_spark)
        return
    if shutil.which("java") is None:
        raise SystemExit("Spark needs a Java runtime: run `make system-deps`")
    workdir = RESULTS / "spark_scale"
    workdir.mkdir(parents=True, exist_ok=True)
    base_env = {**os.environ, "TRACKHOUSE_PROJECT_DIR": str(ROOT), "DBT_PROFILES_DIR": str(ROOT)}
    copy = [str(sys.executable), __file__, "--copy-into-spark"]

    runs: list[dict[str, Any]] = []
    for multiple in (int(m) for m in args.sizes.split(",")):
        count = args.events * multiple
        db, spark_dir = workdir / f"bench-{count}.duckdb", workdir / f"spark-{count}"
        db.unlink(missing_ok=True)
        shutil.rmtree(spark_dir, ignore_errors=True)
        duck_env = {**base_env, "TRACKHOUSE_TARGET": "duckdb", "TRACKHOUSE_DUCKDB_PATH": str(db)}
        spark_env = {
            **base_env,
            "TRACKHOUSE_TARGET": "spark",
            "TRACKHOUSE_SPARK_DIR": str(spark_dir),
        }
        print(f"... generating {count:,} activity events", file=sys.stderr, flush=True)
        started = time.perf_counter()
        rows = generate(db, count)
        run_: dict[str, Any] = {"activity_events": count, "raw_rows": rows}
        run_["generate_seconds"] = round(time.perf_counter() - started, 1)
        base = export(db, workdir / "parquet-base", 1)
        run_["copy_into_spark_seconds"] = round(
            run([*copy, str(workdir / "parquet-base")], spark_env, f"copy {base} into Spark"), 1
        )
        for target, env in (("duckdb", duck_env), ("spark", spark_env)):
            run_[f"{target}_full"] = build(env, workdir / f"t-{target}", f"full build ({target})")
        new_day = count // activity.DAYS
        activity.add_day(db, new_day, max(count // 100, 1_000))
        export(db, workdir / "parquet-day", 2)
        run([*copy, str(workdir / "parquet-day")], spark_env, "copy the new day into Spark")
        run_["new_day_events"] = new_day
        for target, env in (("duckdb", duck_env), ("spark", spark_env)):
            run_[f"{target}_incremental"] = build(
                env, workdir / f"t-{target}", f"incremental build ({target})"
            )
        runs.append(run_)
        (RESULTS / "spark_scale.json").write_text(json.dumps({"runs": runs}, indent=2))
        db.unlink(missing_ok=True)
        shutil.rmtree(spark_dir, ignore_errors=True)

    result = {
        "runs": runs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}",
        "load_average_at_end": os.getloadavg()[0],
    }
    (RESULTS / "spark_scale.json").write_text(json.dumps(result, indent=2))
    lines = [f"{'':22}" + "".join(f"{r['activity_events']:>14,}: duckdb    spark" for r in runs)]
    for label, key in (("full build (s)", "full"), ("incremental build (s)", "incremental")):
        cells = "".join(
            f"{'':14}  {r[f'duckdb_{key}']['seconds']:8.1f} {r[f'spark_{key}']['seconds']:8.1f}"
            for r in runs
        )
        lines.append(f"{label:22}{cells}")
    for r in runs:
        lines.append(f"{r['activity_events']:,} events: raw rows {r['raw_rows']}")
        for target in ("duckdb", "spark"):
            slow = ", ".join(f"{m} {s}" for m, s in r[f"{target}_full"]["slowest_models"])
            lines.append(f"  slowest models, full build on {target}: {slow}")
    lines.append(f"{result['machine']}; load average {result['load_average_at_end']:.1f}")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
