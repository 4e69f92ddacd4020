"""Statistics benchmark (issue 5): the statistics marts on 10M activity events and 1M
conversions in DuckDB — a full build; one more day and an incremental build (the
everyday run); events weeks late and another incremental build — and, in the same
run, the naive formulation (one correlated distinct count per date and period) on
the same inputs.

    .venv/bin/python bench/statistics.py [--events 10000000] [--conversions 1000000]
        [--users 100000] [--touchpoints 200000] [--keep]

Rows are generated in DuckDB SQL straight into the raw tables of a temporary
warehouse; the report time zone is Europe/Amsterdam. The models upstream of the
statistics marts (activity_hourly, conversions, touchpoints, ...) are built
before each measurement and are not part of it; the views the marts read
(int_users_resolved, int_activity_days_accounted, ...) are, since they are
computed inside them. The last incremental result is compared with a full
refresh of the same state, and the naive values with the mart's. Prints a table and writes
bench/results/statistics.json. Not a test: nothing about speed is asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
from _common import duckdb_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEZONE = "Europe/Amsterdam"
FIRST_DAY = "2024-01-01"
DAYS = 365  # Jan 1 - Dec 30 generated; Dec 31 is the day added before the incremental run
AS_OF_FULL = "2024-12-30"
AS_OF_INCREMENTAL = "2024-12-31"
ACCOUNTS = 2_000
EVENTS_PER_SESSION = 4
MARTS = ("statistics_by_date", "statistics_by_date_and_object")
UPSTREAM = ("--select", *(f"+{m}" for m in MARTS), "--exclude", *MARTS)
PERIOD_DAYS = {"day": 1, "week": 7, "days_28": 28, "month": 30, "lifetime": 100_000}


def local_date(column: str) -> str:
    return f"cast(timezone('{TIMEZONE}', timezone('UTC', {column})) as date)"


def generate(db: Path, events: int, conversions: int, users: int, touchpoints: int) -> None:
    """Raw rows: sessions of 4 events within an hour, spread over the year; users
    (70% in one of the accounts) joined over 18 months; conversions (4 event
    names, 95% confirmed, EUR or USD); touchpoints from 20 sources, 2% bots."""
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
            with timed as (
                select
                    i,
                    i // {EVENTS_PER_SESSION} as session,
                    timestamp '{FIRST_DAY}' + to_seconds(
                        (i // {EVENTS_PER_SESSION} * ({DAYS} * 86400 // {sessions})) // 3600 * 3600
                        + hash(i) % 3600
                    ) as occurred_at
                from range({events}) as t (i)
            )
            select
                'e' || i,
                'u' || (hash(session * 31 + 7) % {users}),
                occurred_at,
                occurred_at + interval 10 minute,
                1
            from timed
            order by i
            """
        )
        con.execute(
            f"""
            insert into trackhouse_raw.users
            select
                'user-' || n, 'u' || n,
                timestamp '2023-07-01' + to_seconds(hash(n) % (540 * 86400)),
                hash(n * 3) % 10 <> 0,
                case when hash(n * 5) % 10 < 7 then 'a' || (hash(n * 7) % {ACCOUNTS}) end,
                timestamp '2023-07-01', timestamp '2023-07-01', 1
            from range({users}) as t (n)
            """
        )
        con.execute(
            f"""
            insert into trackhouse_raw.conversion_events
            with timed as (
                select
                    i,
                    timestamp '{FIRST_DAY}' + to_seconds(i * ({DAYS} * 86400 // {conversions}))
                        as occurred_at
                from range({conversions}) as t (i)
            )
            select
                'ce' || i, 'c' || i,
                ['purchase', 'signup', 'trial_started', 'upgrade'][1 + cast(hash(i) % 4 as bigint)],
                'anon' || (hash(i * 3) % {users * 3}), null,
                occurred_at,
                (hash(i * 5) % 20000) / 100.0,
                case when hash(i * 7) % 5 = 0 then 'USD' else 'EUR' end,
                hash(i * 11) % 20 <> 0, true, null, null,
                occurred_at + interval 10 minute, 1
            from timed
            order by i
            """
        )
        sources = ", ".join(f"'source{n}'" for n in range(20))
        con.execute(
            f"""
            insert into trackhouse_raw.touchpoints
            with timed as (
                select
                    i,
                    timestamp '{FIRST_DAY}' + to_seconds(i * ({DAYS} * 86400 // {touchpoints}))
                        as occurred_at
                from range({touchpoints}) as t (i)
            )
            select
                'tp' || i, 'anon' || (hash(i * 3) % {users * 3}), null, occurred_at,
                'https://shop.example/landing?utm_source='
                    || [{sources}][1 + cast(hash(i) % 20 as bigint)]
                    || '&utm_campaign=c' || (hash(i * 5) % 50),
                null,
                case when hash(i * 7) % 50 = 0 then 'Googlebot/2.1' else 'Mozilla/5.0 (X11)' end,
                null,
                occurred_at + interval 10 minute, 1
            from timed
            order by i
            """
        )
    finally:
        con.close()


def add_day(db: Path, events: int, conversions: int, users: int) -> dict[str, int]:
    """Dec 31: one more day of activity and conversions, received after the first build."""
    per_day, conversions_per_day = events // DAYS, conversions // DAYS
    con = duckdb.connect(str(db))
    try:
        con.execute(
            f"""
            insert into trackhouse_raw.activity
            select
                'new' || i, 'u' || (hash(i // {EVENTS_PER_SESSION} * 17 + 3) % {users}),
                timestamp '{AS_OF_INCREMENTAL}' + to_seconds(i * 86400 // {per_day}),
                now()::timestamp, 2
            from range({per_day}) as t (i)
            """
        )
        con.execute(
            f"""
            insert into trackhouse_raw.conversion_events
            select
                'new-ce' || i, 'new-c' || i, 'purchase', 'anon' || i, null,
                timestamp '{AS_OF_INCREMENTAL}' + to_seconds(i * 86400 // {conversions_per_day}),
                10.00, 'EUR', true, true, null, null, now()::timestamp, 2
            from range({conversions_per_day}) as t (i)
            """
        )
    finally:
        con.close()
    return {"new_day_events": per_day, "new_day_conversions": conversions_per_day}


def add_late_events(db: Path, events: int, conversions: int) -> dict[str, int]:
    """Events from Nov 15 (new users) and conversions from Oct 1 that arrive only now."""
    late_events, late_conversions = events // DAYS // 5, conversions // DAYS // 5
    con = duckdb.connect(str(db))
    try:
        con.execute(
            f"""
            insert into trackhouse_raw.activity
            select
                'late' || i, 'late-u' || (i % 1000),
                timestamp '2024-11-15 12:00:00' + to_seconds(i % 3600),
                now()::timestamp, 3
            from range({late_events}) as t (i)
            """
        )
        con.execute(
            f"""
            insert into trackhouse_raw.conversion_events
            select
                'late-ce' || i, 'late-c' || i, 'upgrade', 'anon' || i, null,
                timestamp '2024-10-01 12:00:00', 25.50, 'USD', true, true, null, null,
                now()::timestamp, 3
            from range({late_conversions}) as t (i)
            """
        )
    finally:
        con.close()
    return {"late_events": late_events, "late_conversions": late_conversions}


def dbt(db: Path, target_dir: Path, as_of: str, *args: str) -> dict[str, float]:
    """Wall-clock seconds of a dbt command and the execution time of each model."""
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
        "--vars",
        json.dumps({"report_timezone": TIMEZONE, "as_of": as_of, "lookback_days": 3}),
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-2000:]}")
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    times = {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}
    return {"wall_s": elapsed, **times}


NAIVE_FACTS = {
    "user_count": (
        f"select user_id as k, {local_date('joined_at')} as d from main.int_users_resolved",
        False,
    ),
    "active_users": (
        "select user_id as k, activity_date as d from main.int_activity_days_accounted",
        False,
    ),
    "touchpoint_count": (
        f"select touchpoint_id as k, {local_date('touched_at')} as d from main.touchpoints",
        False,
    ),
    "conversion_count": (
        f"select conversion_id as k, {local_date('converted_at')} as d "
        "from main.conversions where is_valid",
        False,
    ),
    "conversion_value": (
        f"select value as k, {local_date('converted_at')} as d "
        "from main.conversions where is_valid and value is not null",
        True,
    ),
}


def naive_sql(as_of: str) -> str:
    """statistics_by_date the naive way: one correlated count per date and period."""
    periods = ", ".join(f"('{p}', {n})" for p, n in PERIOD_DAYS.items())
    parts = []
    for metric, (facts, summing) in NAIVE_FACTS.items():
        aggregate = "coalesce(sum(f.k), 0)" if summing else "count(distinct f.k)"
        parts.append(
            f"""
            select
                '{metric}' as metric, p.period, s.date,
                (
                    select {aggregate} from ({facts}) as f
                    where f.d <= s.date and f.d > s.date - p.days
                ) as value
            from (
                select cast(day_ts as date) as date
                from range(
                    (select cast(min(d) as timestamp) from ({facts}) as first_fact),
                    timestamp '{as_of}' + interval 1 day,
                    interval 1 day
                ) as t (day_ts)
            ) as s
            cross join (values {periods}) as p (period, days)"""
        )
    return " union all ".join(parts)


def compare(db: Path, other: Path) -> dict[str, int]:
    """Rows in one warehouse's marts and not in the other's, both ways."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute(f"attach '{other}' as other (read_only)")
        differences = {}
        for mart in MARTS:
            differences[mart] = sum(
                con.execute(
                    f"select count(*) from (select * from {a}.main.{mart} "
                    f"except all select * from {b}.main.{mart})"
                ).fetchone()[0]
                for a, b in (("bench", "other"), ("other", "bench"))
            )
        return differences
    finally:
        con.close()


def run_naive(db: Path, as_of: str) -> tuple[float, int, int]:
    """Seconds of the naive query, its rows, and how many differ from the mart."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        started = time.perf_counter()
        con.execute(f"create temp table naive as {naive_sql(as_of)}")
        elapsed = time.perf_counter() - started
        rows = con.execute("select count(*) from naive").fetchone()[0]
        differing = con.execute(
            """
            select count(*)
            from naive
            full outer join main.statistics_by_date as mart
                on mart.metric = naive.metric and mart.period = naive.period
                and mart.date = naive.date
            where mart.value is distinct from naive.value
            """
        ).fetchone()[0]
        return elapsed, rows, differing
    finally:
        con.close()


def count_rows(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = (*MARTS, "activity_hourly", "int_activity_days_localized", "conversions")
        return {t: con.execute(f"select count(*) from main.{t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--touchpoints", type=int, default=200_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary warehouse")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="trackhouse-bench-statistics-"))
    db, target = tmp / "bench.duckdb", tmp / "target"
    results: dict[str, Any] = {
        "activity_events": args.events,
        "conversions": args.conversions,
        "users": args.users,
        "touchpoints": args.touchpoints,
    }
    try:
        started = time.perf_counter()
        generate(db, args.events, args.conversions, args.users, args.touchpoints)
        results["generate_s"] = round(time.perf_counter() - started, 1)

        # State A: everything upstream, then the statistics marts from scratch.
        dbt(db, target, AS_OF_FULL, "seed")
        dbt(db, target, AS_OF_FULL, "run", *UPSTREAM)
        full = dbt(db, target, AS_OF_FULL, "run", "--select", *MARTS, "--full-refresh")

        # State B: one more day (the everyday run); upstream catches up, then the marts
        # incrementally.
        results |= add_day(db, args.events, args.conversions, args.users)
        dbt(db, target, AS_OF_INCREMENTAL, "run", *UPSTREAM)
        daily = dbt(db, target, AS_OF_INCREMENTAL, "run", "--select", *MARTS)

        # State C: events and conversions 6 and 13 weeks late arrive.
        results |= add_late_events(db, args.events, args.conversions)
        dbt(db, target, AS_OF_INCREMENTAL, "run", *UPSTREAM)
        incremental = dbt(db, target, AS_OF_INCREMENTAL, "run", "--select", *MARTS)

        # The same state rebuilt from scratch: the time of a full build, and the check.
        copy = tmp / "full.duckdb"
        shutil.copy(db, copy)
        refreshed = dbt(
            copy, target, AS_OF_INCREMENTAL, "run", "--select", *MARTS, "--full-refresh"
        )
        differences = compare(db, copy)

        naive_s, naive_rows, naive_differing = run_naive(db, AS_OF_INCREMENTAL)
        rows = count_rows(db)
        results |= {f"{t}_rows": n for t, n in rows.items()}
        results |= {
            "full_build_wall_s": round(full["wall_s"], 2),
            "full_statistics_by_date_s": round(full["statistics_by_date"], 2),
            "full_statistics_by_date_and_object_s": round(full["statistics_by_date_and_object"], 2),
            "daily_incremental_wall_s": round(daily["wall_s"], 2),
            "daily_incremental_statistics_by_date_s": round(daily["statistics_by_date"], 2),
            "daily_incremental_statistics_by_date_and_object_s": round(
                daily["statistics_by_date_and_object"], 2
            ),
            "late_incremental_wall_s": round(incremental["wall_s"], 2),
            "late_incremental_statistics_by_date_s": round(incremental["statistics_by_date"], 2),
            "late_incremental_statistics_by_date_and_object_s": round(
                incremental["statistics_by_date_and_object"], 2
            ),
            "full_refresh_after_late_statistics_by_date_s": round(
                refreshed["statistics_by_date"], 2
            ),
            "full_refresh_after_late_statistics_by_date_and_object_s": round(
                refreshed["statistics_by_date_and_object"], 2
            ),
            "incremental_rows_differing_from_full_refresh": sum(differences.values()),
            "naive_statistics_by_date_s": round(naive_s, 2),
            "naive_rows": naive_rows,
            "naive_rows_differing_from_mart": naive_differing,
            "naive_over_statistics_by_date_full": round(
                naive_s / refreshed["statistics_by_date"], 1
            ),
            "daily_incremental_over_full_refresh": round(
                (daily["statistics_by_date"] + daily["statistics_by_date_and_object"])
                / (refreshed["statistics_by_date"] + refreshed["statistics_by_date_and_object"]),
                3,
            ),
            "late_incremental_over_full_refresh": round(
                (incremental["statistics_by_date"] + incremental["statistics_by_date_and_object"])
                / (refreshed["statistics_by_date"] + refreshed["statistics_by_date_and_object"]),
                3,
            ),
        }
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "statistics.json").write_text(json.dumps(results, indent=2))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
