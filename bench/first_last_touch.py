"""First and last touch with a hot identity (issue 16): `conversion_attribution` read
off each identity's timeline, against the same mart built from the eligible pairs by
an older commit, on the same generated rows.

    .venv/bin/python bench/first_last_touch.py [--touchpoints 200000] [--conversions 20000]
        [--identities 3000] [--hot-percent 10] [--baseline 99ad6ba] [--runs 3]

Raw rows come from bench/attribution.py's generator (one identity holding
`--hot-percent` of all touchpoints and conversions). The upstream marts are built
once; then `dbt run --select conversion_attribution` is timed `--runs` times (model
time from run_results.json, median). With --baseline, the older commit's project
(`git archive`) builds `int_conversion_touchpoints_matched` and its
`conversion_attribution` (which read the pairs) on the same file, timed the same way,
and both marts' rows are compared: the run stops if they differ.

With --api, `attribute_conversions(as_arrow=True)` is also called three times in a
process of its own (30-day last touch): each call's seconds and the process's peak
memory (the pair index, or the query when the pairs would be too many); then the query
PostgreSQL and Spark run per call (`attribution_sql`) on the in-memory copies, for
windows of 30, 7 and 90 days.

With --postgres, the same raw rows are copied into a PostgreSQL server of the
benchmark's own (tests/pg_server.py, fsync off), `touchpoints` and `conversions` are
built there by dbt, `conversion_attribution` is timed there (one run after a warm-up),
and `attribute_conversions` (which runs `attribution_sql` on PostgreSQL) per model and
window: the first call and the median of three more.

With --credits, the multi-touch chain (`int_conversion_touchpoints_matched`,
`int_channel_paths_sequenced`, `int_channel_removal_effects`, `attribution_credits`)
is built once on DuckDB, and with --postgres on PostgreSQL too (stopped after
--credits-timeout seconds): each model's time and the eligible pairs (its rows are one
per conversion, model and eligible touchpoint, SPEC §3: quadratic for a hot identity
by definition).

Prints a table and writes bench/results/first_last_touch.json. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
from _common import duckdb_env
from attribution import generate

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
SEEDS = ("bot_user_agents", "channel_rules", "channel_hosts")


CREDITS = [
    "int_conversion_touchpoints_matched",
    "int_channel_paths_sequenced",
    "int_channel_removal_effects",
    "attribution_credits",
]


def dbt(
    env: dict[str, str], project: Path, target: Path, *args: str, timeout: float | None = None
) -> dict[str, float]:
    """One dbt command in `project`; the execution time of each node it ran."""
    cmd = [
        str(BIN / "dbt"), *args, "--profiles-dir", str(ROOT), "--project-dir", str(project),
        "--target-path", str(target), "--log-path", str(target),
    ]  # fmt: skip
    done = subprocess.run(
        cmd, env=env, cwd=project, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}


def timed_runs(
    env: dict[str, str], project: Path, target: Path, models: list[str], runs: int
) -> dict[str, float]:
    """Median model time over `runs` runs of `models` (after one warm-up run)."""
    dbt(env, project, target, "run", "--select", *models)
    times = [dbt(env, project, target, "run", "--select", *models) for _ in range(runs)]
    # (bench/statistics.py shadows the standard library's module here)
    return {m: sorted(t[m] for t in times)[len(times) // 2] for m in times[0]}


def export_project(commit: str, into: Path) -> Path:
    """The dbt project of an older commit (models, macros, seeds, dbt_project.yml)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "dbt_project.yml", "models", "macros", "seeds"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True)
    tar_path = into.with_suffix(".tar")
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into


API_CALLS = """
import json, resource, time
from trackhouse.query.attribution import attribute_conversions
seconds = []
for _ in range(3):
    started = time.perf_counter()
    attribute_conversions("last_touch", 30, as_arrow=True)
    seconds.append(round(time.perf_counter() - started, 3))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
from trackhouse.query import fetch_marts
from trackhouse.query.attribution import _INDEX_MARTS, attribution_sql
from trackhouse.settings import load_settings
settings = load_settings()
query_seconds = {}
for days in (30, 7, 90):
    sql, params = attribution_sql(settings, "last_touch", days)
    started = time.perf_counter()
    fetch_marts(sql, params, settings, _INDEX_MARTS)
    query_seconds[days] = round(time.perf_counter() - started, 3)
print(json.dumps({"call_seconds": seconds, "peak_mib": peak, "query_seconds": query_seconds}))
"""


PG_CALLS = """
import json, time
from trackhouse.query.attribution import attribute_conversions
out = {}
for model, days, direct in (("last_touch", 30, False), ("first_touch", 30, False),
                            ("last_touch", 7, False), ("last_touch", 90, False),
                            ("last_touch", 30, True)):
    seconds = []
    for _ in range(4):
        started = time.perf_counter()
        rows = attribute_conversions(model, days, exclude_direct=direct, as_arrow=True)
        seconds.append(time.perf_counter() - started)
    key = f"{model} {days}d" + (" non-direct" if direct else "")
    out[key] = {"first": round(seconds[0], 3), "median": round(sorted(seconds[1:])[1], 3),
                "rows": rows.num_rows}
print(json.dumps(out))
"""


def credits(env: dict[str, str], target: Path, timeout: float) -> dict[str, Any]:
    """The multi-touch chain built once; each model's seconds, or where it stopped."""
    started = time.perf_counter()
    try:
        times = dbt(env, ROOT, target, "run", "--select", *CREDITS, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"stopped_after_seconds": round(time.perf_counter() - started, 1)}
    return {m: round(times[m], 3) for m in CREDITS}


def postgres_calls(db: Path, workdir: Path, with_credits: float | None) -> dict[str, Any]:
    """The DuckDB file's raw rows copied into a PostgreSQL server of this run's own
    (fsync off), the attribution marts built there, and attribute_conversions timed."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pg_server

    server = pg_server.start(durable=False)
    try:
        dbname = "bench_first_last"
        server.create_database(dbname)
        env = {**os.environ, **server.env(dbname)}
        subprocess.run([str(BIN / "trackhouse"), "init"], env=env, check=True, capture_output=True)
        with duckdb.connect(str(db)) as con, server.connect(dbname) as pg:
            tables = con.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'trackhouse_raw'"
            ).fetchall()
            for (table,) in tables:
                if not con.execute(f"select count(*) from trackhouse_raw.{table}").fetchone()[0]:
                    continue
                columns = [c[0] for c in con.execute(f"describe trackhouse_raw.{table}").fetchall()]
                path = workdir / f"{table}.csv"
                con.execute(f"copy trackhouse_raw.{table} to '{path}' (header false)")
                names = ", ".join(f'"{c}"' for c in columns)
                with pg.cursor().copy(
                    f'copy trackhouse_raw."{table}" ({names}) from stdin (format csv)'
                ) as copy:
                    copy.write(path.read_bytes())
        target = workdir / "target-postgres"
        dbt(env, ROOT, target, "seed", "--select", *SEEDS)
        dbt(env, ROOT, target, "run", "--select", "+touchpoints", "+conversions")
        mart = timed_runs(env, ROOT, target, ["conversion_attribution"], 1)
        done = subprocess.run(
            [sys.executable, "-c", PG_CALLS], env=env, capture_output=True, text=True, check=True
        )
        calls = json.loads(done.stdout.strip().splitlines()[-1])
        if with_credits is not None:
            calls["credits_seconds"] = credits(env, target, with_credits)
        return {"conversion_attribution_seconds": round(mart["conversion_attribution"], 3), **calls}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--touchpoints", type=int, default=200_000)
    parser.add_argument("--conversions", type=int, default=20_000)
    parser.add_argument("--identities", type=int, default=3_000)
    parser.add_argument("--hot-percent", type=int, default=10)
    parser.add_argument("--baseline", help="an older commit, built on the same rows")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--api", action="store_true", help="also time attribute_conversions")
    parser.add_argument(
        "--postgres", action="store_true", help="time attribute_conversions on PostgreSQL too"
    )
    parser.add_argument(
        "--credits", action="store_true", help="also build the multi-touch chain once"
    )
    parser.add_argument("--credits-timeout", type=float, default=600)
    args = parser.parse_args()
    load_before = float(Path("/proc/loadavg").read_text().split()[0])
    workdir = Path(tempfile.mkdtemp(prefix="trackhouse-bench-first-last-"))
    db = workdir / "bench.duckdb"
    env = duckdb_env(db)
    os.environ.update(env)
    started = time.perf_counter()
    counts = generate(db, args.touchpoints, args.conversions, args.identities, args.hot_percent)
    print(f"generated {counts} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    target = workdir / "target"
    dbt(env, ROOT, target, "seed", "--select", *SEEDS)
    dbt(env, ROOT, target, "run", "--select", "+touchpoints", "+conversions")
    with duckdb.connect(str(db)) as con:
        hot = con.execute(
            "select count(*) from touchpoints group by stitched_id order by 1 desc limit 1"
        ).fetchone()[0]
    result: dict[str, Any] = {"scale": vars(args), "hot_identity_touchpoints": hot}
    new = timed_runs(env, ROOT, target, ["conversion_attribution"], args.runs)
    result["timeline_seconds"] = round(new["conversion_attribution"], 3)
    print(f"conversion_attribution from the timelines: {new['conversion_attribution']:.2f}s")
    if args.api:
        done = subprocess.run(
            [sys.executable, "-c", API_CALLS], env=env, capture_output=True, text=True, check=True
        )
        result["api"] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"attribute_conversions(as_arrow=True): {result['api']}")
    if args.credits:
        result["credits_seconds"] = credits(env, target, args.credits_timeout)
        with duckdb.connect(str(db)) as con:
            result["eligible_pairs"] = con.execute(
                "select count(*) from int_conversion_touchpoints_matched"
            ).fetchone()[0]
            result["credit_rows"] = con.execute(
                "select count(*) from attribution_credits"
            ).fetchone()[0]
        print(
            f"multi-touch chain on DuckDB: {result['credits_seconds']}; "
            f"{result['eligible_pairs']:,} eligible pairs, {result['credit_rows']:,} credit rows"
        )
    if args.postgres:
        timeout = args.credits_timeout if args.credits else None
        result["postgres"] = postgres_calls(db, workdir, timeout)
        print(f"attribute_conversions on PostgreSQL: {result['postgres']}")
    if args.baseline:
        with duckdb.connect(str(db)) as con:
            con.execute("create table bench_new as select * from conversion_attribution")
        old_project = export_project(args.baseline, workdir / "baseline")
        old = timed_runs(
            env,
            old_project,
            workdir / "target-baseline",
            ["int_conversion_touchpoints_matched", "conversion_attribution"],
            args.runs,
        )
        pairs = old["int_conversion_touchpoints_matched"] + old["conversion_attribution"]
        result["baseline_seconds"] = {k: round(v, 3) for k, v in old.items()}
        with duckdb.connect(str(db)) as con:
            differing = con.execute(
                "select count(*) from ((select * from bench_new except all "
                "select * from conversion_attribution) union all "
                "(select * from conversion_attribution except all select * from bench_new))"
            ).fetchone()[0]
            rows = con.execute("select count(*) from bench_new").fetchone()[0]
            pair_rows = con.execute(
                "select count(*) from int_conversion_touchpoints_matched"
            ).fetchone()
        if differing:
            sys.exit(f"the two marts differ in {differing} rows")
        result.update(rows=rows, eligible_pairs=pair_rows[0], same_rows=True)
        print(
            f"{args.baseline}: int_conversion_touchpoints_matched "
            f"{old['int_conversion_touchpoints_matched']:.2f}s + conversion_attribution "
            f"{old['conversion_attribution']:.2f}s = {pairs:.2f}s "
            f"({pair_rows[0]:,} eligible pairs); the same {rows:,} rows"
        )
    result["load_average"] = [load_before, float(Path("/proc/loadavg").read_text().split()[0])]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_last_touch.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"hot identity: {hot:,} touchpoints; load average {result['load_average']}")


if __name__ == "__main__":
    main()
