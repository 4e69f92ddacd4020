"""Activity benchmark (issue 3): `dbt build` of the activity models on 10M activity
events in DuckDB, then one more day of events and an incremental build; and, in
the same run, one hand-written DuckDB query that computes the calendar monthly
usage straight from the raw table (the floor).

    .venv/bin/python bench/activity.py [--events 10000000] [--users 100000] [--keep]

The rows are generated in DuckDB SQL straight into trackhouse_raw.activity (and
users, accounts) of a temporary warehouse. The report time zone is
America/New_York, so every local date is a real conversion. The floor's numbers
are checked against the mart's. For each build it reports the wall clock, dbt's
start-up, the models' seconds and how much of them was SQL in the database, the
data tests, and the seconds of each model. Prints a table and writes
bench/results/activity.json. Not a test: nothing about speed is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
from _common import duckdb_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEZONE = "America/New_York"
DAYS = 365
FIRST_DAY = "2024-01-01"
AS_OF = "2024-12-31"  # the generated year is Jan 1 - Dec 30; the extra day is Dec 31
ACCOUNTS = 2_000
EVENTS_PER_SESSION = 4  # events of one user within one clock hour
# The activity models and their data tests; the staging views (and their tests on the
# raw tables) are created once beforehand, they are not part of what is measured.
SELECT = (
    "--select",
    "models/intermediate/activity",
    "models/marts/activity",
    "--exclude-resource-type",
    "unit_test",
)


def generate(db: Path, events: int, users: int) -> dict[str, int]:
    """Raw rows in DuckDB SQL: sessions of EVENTS_PER_SESSION events within an
    hour, spread evenly over the year in time order (as a raw table fills up),
    each by a pseudo-random user; every user has a users row (joined before its
    activity, ~10% inactive, ~70% in one of the accounts), every account a
    group row with a subscription start."""
    import sqlalchemy as sa

    from trackhouse.schema import init_schema

    engine = sa.create_engine(f"duckdb:///{db}", poolclass=sa.pool.NullPool)
    init_schema(engine)
    engine.dispose()
    sessions = events // EVENTS_PER_SESSION
    con = duckdb.connect(str(db))
    try:
        con.execute(
            f"""
            insert into trackhouse_raw.activity
            with events as (
                select i, i // {EVENTS_PER_SESSION} as session from range({events}) as t (i)
            ),
            timed as (
                select
                    i,
                    session,
                    timestamp '{FIRST_DAY}'
                    + to_seconds(
                        session * ({DAYS} * 86400) // {sessions} // 3600 * 3600
                        + hash(i) % 3600
                    ) as occurred_at
                from events
            )
            select
                'e' || i as event_id,
                'u' || (hash(session * 31 + 7) % {users}) as user_id,
                occurred_at,
                occurred_at + interval 10 minute as received_at,
                1 as load_sequence
            from timed
            order by i
            """
        )
        con.execute(
            f"""
            insert into trackhouse_raw.users
            select
                'user-' || n as event_id,
                'u' || n as user_id,
                timestamp '2023-06-01' + to_seconds(hash(n) % (200 * 86400)) as date_joined,
                hash(n * 3) % 10 <> 0 as is_active,
                case when hash(n * 5) % 10 < 7 then 'a' || (hash(n * 7) % {ACCOUNTS}) end
                    as account_id,
                timestamp '2023-06-01' as occurred_at,
                timestamp '2023-06-01' as received_at,
                1 as load_sequence
            from range({users}) as t (n)
            """
        )
        con.execute(
            f"""
            insert into trackhouse_raw.accounts
            select
                'account-' || n as event_id,
                'a' || n as account_id,
                null as user_id,
                timestamp '2023-01-01' + to_seconds(hash(n) % (540 * 86400)) as subscription_start,
                'Account ' || n as name,
                timestamp '2023-01-01' as occurred_at,
                timestamp '2023-01-01' as received_at,
                1 as load_sequence
            from range({ACCOUNTS}) as t (n)
            """
        )
        return {
            "activity_rows": con.execute("select count(*) from trackhouse_raw.activity").fetchone()[
                0
            ],
            "users": users,
            "accounts": ACCOUNTS,
        }
    finally:
        con.close()


def add_day(db: Path, events_per_day: int, users: int) -> int:
    """One more day (Dec 31) of events, received after the first build."""
    con = duckdb.connect(str(db))
    try:
        con.execute(
            f"""
            insert into trackhouse_raw.activity
            select
                'new' || i as event_id,
                'u' || (hash(i // {EVENTS_PER_SESSION} * 17 + 3) % {users}) as user_id,
                timestamp '{AS_OF}' + to_seconds(i * 86400 // {events_per_day}) as occurred_at,
                now()::timestamp as received_at,
                2 as load_sequence
            from range({events_per_day}) as t (i)
            """
        )
        return events_per_day
    finally:
        con.close()


def floor_query(db: Path) -> tuple[float, list[tuple[Any, ...]]]:
    """Calendar monthly usage straight from the raw tables, by hand."""
    sql = f"""
    with
    activity_days as (
        select distinct
            user_id,
            cast(timezone('{TIMEZONE}', timezone('UTC', occurred_at)) as date) as activity_date
        from trackhouse_raw.activity
        where timezone('{TIMEZONE}', timezone('UTC', occurred_at)) < date '{AS_OF}' + 1
    ),
    active as (
        select date_trunc('month', activity_date) as month_start, count(distinct user_id) as n
        from activity_days group by 1
    ),
    months as (
        select
            cast(m as date) as month_start,
            timezone('UTC', timezone('{TIMEZONE}', least(m + interval 1 month, date '{AS_OF}' + 1)))
                as month_end_utc
        from range(
            date_trunc('month', least(
                (select min(activity_date) from activity_days),
                (
                    select min(timezone('{TIMEZONE}', timezone('UTC', date_joined)))
                    from trackhouse_raw.users
                )
            )),
            date '{AS_OF}' + 1,
            interval 1 month
        ) as t (m)
    ),
    registered as (
        select
            months.month_start,
            count(u.user_id) as registered_users,
            count(u.user_id) filter (where u.is_active) as activated_users
        from months
        left join trackhouse_raw.users as u on u.date_joined < months.month_end_utc
        group by 1
    )
    select
        strftime(months.month_start, '%Y-%m') as calendar_year_month,
        registered.registered_users,
        registered.activated_users,
        coalesce(active.n, 0) as active_users
    from months
    join registered using (month_start)
    left join active on active.month_start = months.month_start
    order by 1
    """
    con = duckdb.connect(str(db), read_only=True)
    try:
        started = time.perf_counter()
        rows = con.execute(sql).fetchall()
        return time.perf_counter() - started, rows
    finally:
        con.close()


class Build(NamedTuple):
    """One dbt command: wall clock, dbt's own elapsed time (wall minus that is the
    start-up: imports, parsing), the seconds of each node (run_results.json) and
    the seconds its SQL spent in the database (the rest of a node's time is dbt's
    own work: rendering, introspection, bookkeeping)."""

    wall_s: float
    dbt_elapsed_s: float
    nodes: dict[str, float]
    sql: dict[str, float]

    def seconds(self, kind: str) -> float:
        return sum(s for node, s in self.nodes.items() if node.startswith(f"{kind}."))

    @property
    def models_s(self) -> float:
        return self.seconds("model")

    @property
    def tests_s(self) -> float:
        return self.seconds("test")

    def model_s(self, name: str) -> float:
        return self.nodes.get(f"model.trackhouse.{name}", 0.0)

    @property
    def models_sql_s(self) -> float:
        return sum(s for node, s in self.sql.items() if node.startswith("model."))


def sql_seconds(log: Path, invocation_id: str) -> dict[str, float]:
    """Seconds of SQL per node, from dbt's JSON debug log: each query (SQLQuery,
    naming its connection, i.e. the node) is followed by its status with the
    elapsed time (one thread)."""
    seconds: dict[str, float] = {}
    node = ""
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["info"].get("invocation_id") != invocation_id:
            continue
        if event["info"]["name"] == "SQLQuery":
            node = event["data"].get("conn_name", "")
        elif event["info"]["name"] == "SQLQueryStatus" and node:
            seconds[node] = seconds.get(node, 0.0) + event["data"]["elapsed"]
    return seconds


def dbt(db: Path, target_dir: Path, *args: str) -> Build:
    env = duckdb_env(db)
    cmd = [
        str(BIN / "dbt"),
        *args,
        "--project-dir",
        str(ROOT),
        "--target-path",
        str(target_dir),
        "--log-path",
        str(target_dir),
        "--log-format-file",
        "json",
        "--vars",
        json.dumps({"report_timezone": TIMEZONE, "as_of": AS_OF, "lookback_days": 3}),
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"dbt {args[0]} failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-2000:]}")
    run_results = json.loads((target_dir / "run_results.json").read_text())
    nodes = {r["unique_id"]: r["execution_time"] for r in run_results["results"]}
    sql = sql_seconds(target_dir / "dbt.log", run_results["metadata"]["invocation_id"])
    return Build(elapsed, run_results["elapsed_time"], nodes, sql)


def mart_calendar(db: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select calendar_year_month, registered_users, activated_users, active_users "
            "from main.usage_calendar_monthly order by 1"
        ).fetchall()
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary warehouse")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="trackhouse-bench-activity-"))
    db = tmp / "bench.duckdb"
    try:
        started = time.perf_counter()
        sizes = generate(db, args.events, args.users)
        generate_s = time.perf_counter() - started
        # The staging views (and a warm parse, so neither build pays for a cold one).
        dbt(db, tmp / "t", "run", "--select", "models/staging")
        full = dbt(db, tmp / "t", "build", *SELECT)
        floor_s, floor_rows = floor_query(db)
        floor_matches = floor_rows == mart_calendar(db)
        new_events = add_day(db, args.events // DAYS, args.users)
        incremental = dbt(db, tmp / "t", "build", *SELECT)
        con = duckdb.connect(str(db), read_only=True)
        hourly_rows = con.execute("select count(*) from main.activity_hourly").fetchone()[0]
        user_days = con.execute("select count(*) from main.int_activity_days_localized").fetchone()[
            0
        ]
        con.close()
        after_floor_s, after_rows = floor_query(db)
        results = {
            "activity_events": sizes["activity_rows"],
            "users": sizes["users"],
            "accounts": sizes["accounts"],
            "activity_hourly_rows": hourly_rows,
            "user_days": user_days,
            "generate_s": round(generate_s, 2),
        }
        for name, build in (("full", full), ("incremental", incremental)):
            results |= {
                f"{name}_build_s": round(build.wall_s, 2),
                f"{name}_dbt_startup_s": round(build.wall_s - build.dbt_elapsed_s, 2),
                f"{name}_models_s": round(build.models_s, 2),
                f"{name}_models_sql_s": round(build.models_sql_s, 2),
                f"{name}_activity_hourly_s": round(build.model_s("activity_hourly"), 2),
                f"{name}_other_models_s": round(
                    build.models_s - build.model_s("activity_hourly"), 2
                ),
                f"{name}_tests_s": round(build.tests_s, 2),
            }
        results |= {
            "incremental_new_events": new_events,
            "floor_query_s": round(floor_s, 2),
            "incremental_over_full": round(incremental.wall_s / full.wall_s, 3),
            "incremental_over_full_models": round(incremental.models_s / full.models_s, 3),
            "incremental_over_full_activity_hourly": round(
                incremental.model_s("activity_hourly") / full.model_s("activity_hourly"), 3
            ),
            "full_over_floor": round(full.wall_s / floor_s, 2),
            "full_models_over_floor": round(full.models_s / floor_s, 2),
            "floor_equals_mart": floor_matches and after_rows == mart_calendar(db),
            "floor_after_new_day_s": round(after_floor_s, 2),
            "load_average_1m": os.getloadavg()[0],
            "full_model_s": model_seconds(full),
            "incremental_model_s": model_seconds(incremental),
        }
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "activity.json").write_text(json.dumps(results, indent=2))
    width = max(len(k) for k in results)
    for key, value in results.items():
        if not isinstance(value, dict):
            print(f"{key:<{width}}  {value}")
    print("\nseconds per model: full (of which SQL), incremental (of which SQL)")
    incremental = results["incremental_model_s"]
    for model, (total, sql) in results["full_model_s"].items():
        inc_total, inc_sql = incremental.get(model, [0, 0])
        print(f"  {model:<{width - 2}}  {total:>6} ({sql:>5})  {inc_total:>6} ({inc_sql:>5})")


def model_seconds(build: Build) -> dict[str, list[float]]:
    """Each model's seconds and the seconds of its SQL, slowest first."""
    models = sorted(
        ((n, s) for n, s in build.nodes.items() if n.startswith("model.")), key=lambda kv: -kv[1]
    )
    return {n.split(".")[-1]: [round(s, 3), round(build.sql.get(n, 0.0), 3)] for n, s in models}


if __name__ == "__main__":
    main()
