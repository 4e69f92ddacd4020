"""Incremental cost on DuckDB at the issue's size (issue 16): a whole-project `dbt
build` (models and data tests) of N activity events and N/10 touchpoints, then one
more day of data, then the incremental build; by wall clock, per dbt thread count.

    .venv/bin/python bench/incremental.py [--events 10000000] [--threads 1,4]

The raw rows come from bench/activity.py's and bench/attribution.py's generators
(SQL, like bench/spark_scale.py). The new day: N/365 activity events (load_sequence
2) and a day's share of page views and conversions (every 365th row of each, moved
to the day after, with new ids). Each variant starts from a copy of the same
generated file. Each build is its own process (`dbt build --threads T`); a third
build with nothing new shows what an incremental run costs whatever the day holds,
and a build of an empty warehouse (raw tables and seeds only) shows dbt's own floor:
starting, and running every model and data test once. Prints the
wall clock of each build, dbt's own elapsed time, the summed model and data-test
times and the slowest nodes; writes bench/results/incremental.json. Not a test:
nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import duckdb
from _common import duckdb_env, timed_process

sys.path.insert(0, str(Path(__file__).resolve().parent))
import activity
import spark_scale

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"


def add_day(db: Path, events: int) -> dict[str, int]:
    """One more day of activity, page views and conversions (load_sequence 2)."""
    added = {"activity": activity.add_day(db, events // activity.DAYS, max(events // 100, 1_000))}
    con = duckdb.connect(str(db))
    try:
        for table, key in (("touchpoints", "event_id"), ("conversion_events", "event_id")):
            columns = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    f"where table_schema = 'trackhouse_raw' and table_name = '{table}' "
                    "order by ordinal_position"
                ).fetchall()
            ]
            moved = {
                key: f"{key} || '-day'",
                "occurred_at": (
                    f"timestamp '{activity.AS_OF}' + (occurred_at - date_trunc('day', occurred_at))"
                ),
                "received_at": "now()::timestamp",
                "load_sequence": "2",
            }
            if table == "conversion_events":
                moved["conversion_id"] = "conversion_id || '-day'"
            select = ", ".join(moved.get(c, c) for c in columns)
            con.execute(
                f"insert into trackhouse_raw.{table} select {select} "
                f"from trackhouse_raw.{table} where hash({key}) % 365 = 0 and load_sequence = 1"
            )
            added[table] = con.execute(
                f"select count(*) from trackhouse_raw.{table} where load_sequence = 2"
            ).fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    return added


def build(env: dict[str, str], target_dir: Path, threads: int, label: str) -> dict[str, Any]:
    cmd = [
        str(BIN / "dbt"), "build", "--exclude", "resource_type:unit_test",
        "--threads", str(threads),
        "--profiles-dir", str(ROOT), "--project-dir", str(ROOT),
        "--target-path", str(target_dir), "--log-path", str(target_dir),
        "--vars", spark_scale.VARS,
    ]  # fmt: skip
    seconds, _ = timed_process(cmd, env, label)
    run = json.loads((target_dir / "run_results.json").read_text())
    results = run["results"]

    def total(kind: str) -> float:
        return round(
            sum(r["execution_time"] for r in results if r["unique_id"].startswith(kind)), 1
        )

    slowest = sorted(results, key=lambda r: -r["execution_time"])[:8]
    return {
        "wall_seconds": round(seconds, 1),
        "dbt_elapsed_seconds": round(run["elapsed_time"], 1),
        "models_seconds": total("model."),
        "tests_seconds": total("test."),
        "nodes": len(results),
        "slowest": [
            (
                r["unique_id"].split(".")[0],
                r["unique_id"].split(".")[-1],
                round(r["execution_time"], 2),
            )
            for r in slowest
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="N activity events")
    parser.add_argument("--threads", default="1,4", help="dbt thread counts to run")
    args = parser.parse_args()
    workdir = RESULTS / "incremental"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    base = workdir / "base.duckdb"
    print(f"... generating {args.events:,} activity events", file=sys.stderr, flush=True)
    result: dict[str, Any] = {"raw_rows": spark_scale.generate(base, args.events), "runs": []}
    for threads in (int(t) for t in args.threads.split(",")):
        db = workdir / f"threads-{threads}.duckdb"
        shutil.copy(base, db)
        env = duckdb_env(db)
        target = workdir / f"target-{threads}"
        run: dict[str, Any] = {"threads": threads}
        empty = workdir / f"empty-{threads}.duckdb"
        timed_process([str(BIN / "trackhouse"), "init"], duckdb_env(empty), "empty warehouse")
        for attempt in ("first", "again"):  # again: dbt's partial parse warm, as below
            run["empty"] = build(
                duckdb_env(empty), workdir / f"target-empty-{threads}", threads,
                f"build of an empty warehouse ({attempt}), threads {threads}",
            )  # fmt: skip
        empty.unlink()
        run["full"] = build(env, target, threads, f"full build, threads {threads}")
        run["new_day"] = add_day(db, args.events)
        run["incremental"] = build(env, target, threads, f"incremental build, threads {threads}")
        run["ratio"] = round(run["incremental"]["wall_seconds"] / run["full"]["wall_seconds"], 2)
        # the same build once more, with nothing new: what an incremental run costs
        # whatever the data (dbt's start-up, every node's overhead, the tables rebuilt)
        run["nothing_new"] = build(
            env, target, threads, f"build with nothing new, threads {threads}"
        )
        result["runs"].append(run)
        db.unlink()
    base.unlink()
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}"
    result["load_average_at_end"] = os.getloadavg()[0]
    (RESULTS / "incremental.json").write_text(json.dumps(result, indent=2))

    print(f"\n{args.events:,} activity events; raw rows {result['raw_rows']}")
    for run in result["runs"]:
        full, inc = run["full"], run["incremental"]
        builds = (
            ("full", full),
            ("incremental", inc),
            ("nothing new", run["nothing_new"]),
            ("empty warehouse (floor)", run["empty"]),
        )
        for kind, b in builds:
            print(
                f"threads {run['threads']}, {kind}: {b['wall_seconds']} s"
                f" (dbt {b['dbt_elapsed_seconds']} s; models {b['models_seconds']} s,"
                f" tests {b['tests_seconds']} s summed over threads)"
            )
        print(f"  incremental = {run['ratio']:.0%} of full; new day {run['new_day']}")
        floor = run["empty"]["wall_seconds"] / full["wall_seconds"]
        print(f"  an empty warehouse's build = {floor:.0%} of full (the least any build costs)")
        for kind in ("full", "incremental", "nothing_new"):
            slow = ", ".join(f"{name} {s}" for _, name, s in run[kind]["slowest"])
            print(f"  slowest, {kind}: {slow}")
    print(f"{result['machine']}; load average {result['load_average_at_end']:.1f}")


if __name__ == "__main__":
    main()
