"""Spark benchmark (issue 18): full and incremental builds on Spark `local[2]` against
DuckDB on the same machine, at N demo events and at 2N, side by side in one run.

For each size, on each target, in a fresh warehouse: `trackhouse load` of the first
90% of the events (time order), a full `dbt build`, then `trackhouse load` of the
last 10% and the incremental `dbt build` that follows (the incremental models
rebuild their lookback window only). Data tests are included, unit tests left out
(they are disabled on Spark and do not depend on the data). Each step is its own
process, one after another, as `make demo` runs them (Spark: pyspark `local[2]`,
Parquet tables, an embedded Derby metastore).

    .venv/bin/python bench/spark.py [--events 50000] [--sizes 1,2]

Prints a table and writes bench/results/spark.json. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import orjson
from _common import timed_process

ROOT = Path(__file__).resolve().parents[1]

from trackhouse.demo import generate_events  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
END = dt.date(2024, 6, 1)
EVENTS_PER_USER = 81  # the demo's yield over 120 days (bench/postgres.py)
INCREMENT = 0.1
RAW_COUNTED = ("events", "activity", "touchpoints", "conversion_events")


def write_parts(workdir: Path, count: int) -> tuple[Path, Path]:
    """The first `count` demo events (time order), split 90% / 10% into two files."""
    base, increment = (
        workdir / f"events-{count}-base.ndjson",
        workdir / f"events-{count}-inc.ndjson",
    )
    if base.exists() and increment.exists():
        return base, increment
    users = count // EVENTS_PER_USER + 50
    split = int(count * (1 - INCREMENT))
    with base.open("wb") as first, increment.open("wb") as last:
        events = islice(generate_events(users=users, days=120, seed=42, end=END), count)
        for i, event in enumerate(events):
            (first if i < split else last).write(orjson.dumps(event) + b"\n")
    return base, increment


def timed(cmd: list[str], env: dict[str, str], label: str) -> float:
    return timed_process(cmd, env, label)[0]


def run_target(target: str, env: dict[str, str], parts: tuple[Path, Path]) -> dict[str, float]:
    as_of = orjson.dumps({"as_of": (END - dt.timedelta(days=1)).isoformat()}).decode()
    target_path = RESULTS / f"dbt-spark-bench-{target}"
    build = [
        str(BIN / "dbt"), "build", "--exclude", "resource_type:unit_test",
        "--profiles-dir", str(ROOT), "--project-dir", str(ROOT),
        "--target-path", str(target_path), "--log-path", str(target_path), "--vars", as_of,
    ]  # fmt: skip
    load = [str(BIN / "trackhouse"), "load", "--no-progress"]
    return {
        "load_base_seconds": timed([*load, str(parts[0])], env, f"load 90% ({target})"),
        "full_build_seconds": timed(build, env, f"full dbt build ({target})"),
        "load_increment_seconds": timed([*load, str(parts[1])], env, f"load 10% ({target})"),
        "incremental_build_seconds": timed(build, env, f"incremental dbt build ({target})"),
    }


def raw_counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return {
            t: conn.execute(f"select count(*) from trackhouse_raw.{t}").fetchone()[0]  # type: ignore[index]
            for t in RAW_COUNTED
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="N (the smaller size)")
    parser.add_argument("--sizes", default="1,2", help="multiples of N to run (default 1,2)")
    args = parser.parse_args()
    if shutil.which("java") is None:
        raise SystemExit("Spark needs a Java runtime: run `make system-deps`")
    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = RESULTS / "spark"
    workdir.mkdir(exist_ok=True)
    base_env = {**os.environ, "TRACKHOUSE_PROJECT_DIR": str(ROOT), "DBT_PROFILES_DIR": str(ROOT)}

    runs: list[dict[str, Any]] = []
    for multiple in (int(m) for m in args.sizes.split(",")):
        count = args.events * multiple
        print(f"... {count:,} demo events", file=sys.stderr, flush=True)
        parts = write_parts(workdir, count)
        duck_db = workdir / f"bench-{count}.duckdb"
        spark_dir = workdir / f"spark-{count}"
        duck_db.unlink(missing_ok=True)
        shutil.rmtree(spark_dir, ignore_errors=True)
        duck_env = {
            **base_env,
            "TRACKHOUSE_TARGET": "duckdb",
            "TRACKHOUSE_DUCKDB_PATH": str(duck_db),
        }
        spark_env = {
            **base_env,
            "TRACKHOUSE_TARGET": "spark",
            "TRACKHOUSE_SPARK_DIR": str(spark_dir),
        }
        run: dict[str, Any] = {"events": count}
        run["duckdb"] = run_target("duckdb", duck_env, parts)
        run["raw_rows"] = raw_counts(duck_db)
        run["spark"] = run_target("spark", spark_env, parts)
        runs.append(run)
        duck_db.unlink(missing_ok=True)
        shutil.rmtree(spark_dir, ignore_errors=True)

    result = {
        "runs": runs,
        "spark": "local[2], Parquet, "
        f"{os.environ.get('TRACKHOUSE_SPARK_SHUFFLE_PARTITIONS', '4')} shuffle partitions",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}",
        "load_average_at_end": os.getloadavg()[0],
    }
    (RESULTS / "spark.json").write_text(json.dumps(result, indent=2))
    steps = [
        ("load 90%", "load_base_seconds"),
        ("full build", "full_build_seconds"),
        ("load 10%", "load_increment_seconds"),
        ("incremental build", "incremental_build_seconds"),
    ]
    lines = [f"{'':20}" + "".join(f"{r['events']:>12,} ev: duckdb    spark" for r in runs)]
    for label, key in steps:
        cells = "".join(f"{'':12}  {r['duckdb'][key]:8.1f} {r['spark'][key]:8.1f}" for r in runs)
        lines.append(f"{label:20}{cells}")
    for r in runs:
        raw = ", ".join(f"{t} {n:,}" for t, n in r["raw_rows"].items())
        lines.append(f"{r['events']:,} events: {raw}")
    lines.append(f"seconds; {result['machine']}; results: {RESULTS / 'spark.json'}")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
