"""Attribution benchmark (issue 4): 1M touchpoints and 100k conversions over 50k
identities in DuckDB.

    .venv/bin/python bench/attribution.py [--touchpoints 1000000] [--conversions 100000]
                                          [--identities 50000] [--hot-percent 0] [--keep]

1. Raw rows are generated in DuckDB SQL straight into trackhouse_raw
   (touchpoints with messy UTM values, some bots and admin paths; identity links
   with second devices and alias chains; conversions with later confirmations
   and deactivations) of a temporary warehouse.
2. `dbt run` of the attribution models (identities, touchpoints, conversions,
   conversion_attribution, attribution_credits and their intermediates) is timed.
3. `attribute_conversions` is timed once per window (each call a different
   window; the first also copies the marts and prepares the pairs), against
   the naive formulation users would otherwise write — the seed's
   `with_attribution`, one correlated subquery per attributed field per
   conversion — on the same marts, in the same run. Both
   are timed as SQL alone (count over the query) and end to end (rows fetched
   into Python), and their rows are checked to be the same.

Prints a table and writes bench/results/attribution.json. Nothing is asserted
about speed.
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
from typing import Any

import duckdb
from _common import duckdb_env

from trackhouse.parsing import TRACKING_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELS = ("+conversion_attribution", "+attribution_credits", "+identities")
SOURCES = ["google", "Google", "facebook", "newsletter", "bing", "linkedin", "partner", "tiktok"]
WINDOWS: list[tuple[int, dict[str, int] | None]] = [
    (7, None),
    (14, None),
    (30, None),
    (60, None),
    (90, None),
    (30, {"google": 7, "facebook": 14, "newsletter": 3}),
]
TRACKING = TRACKING_PARAMETERS


def draw(seed_expr: str, n: int) -> str:
    """SQL for a deterministic pseudo-random integer in [0, n) from a row number."""
    return f"cast(hash({seed_expr}) % {n} as bigint)"


def generate(
    db: Path, touchpoints: int, conversions: int, identities: int, hot_percent: int = 0
) -> dict[str, int]:
    """Raw rows straight into trackhouse_raw. `hot_percent`: that share of all
    touchpoints and conversions belongs to one identity (identity 0: a kiosk, a QA
    user, an `undefined` anonymous id), the rest spread as usual."""
    import sqlalchemy as sa

    from trackhouse.schema import init_schema

    engine = sa.create_engine(f"duckdb:///{db}", poolclass=sa.pool.NullPool)
    init_schema(engine)
    engine.dispose()
    sources = "[" + ", ".join(f"'{s}'" for s in SOURCES) + "]"
    half_year = 182 * 86400
    con = duckdb.connect(str(db))
    try:
        # Identities: 70% have a user; every identity has a first device, 30% a
        # second; 2% of first devices were aliased from an older id (a chain).
        con.execute(
            f"""
            create temp table ids as
            select
                i,
                {draw("i * 3 + 1", 10)} < 7 as has_user,
                {draw("i * 5 + 2", 10)} < 3 as has_second_device,
                {draw("i * 7 + 3", 50)} = 0 as has_alias
            from range({identities}) as t (i)
            """
        )
        con.execute(
            f"""
            insert into trackhouse_raw.identity_links
            select
                'link-' || i || '-' || device as event_id,
                'anon-' || i || '-' || device as anonymous_id,
                'user-' || i as user_id,
                'identify' as link_type,
                timestamp '2024-01-01' + to_seconds({draw("i * 11 + device", half_year)})
                    as occurred_at,
                timestamp '2024-07-01' as received_at,
                1 as load_sequence
            from ids, (select unnest([0, 1]) as device)
            where has_user and (device = 0 or has_second_device)
            union all
            select
                'alias-' || i, 'old-' || i, 'anon-' || i || '-0', 'alias',
                timestamp '2024-01-01', timestamp '2024-07-01', 1
            from ids
            where has_alias
            """
        )
        # Touchpoints: a quarter while logged in, the rest anonymous (device 0/1,
        # or the aliased old id); percent-encoded campaigns, repeated sources,
        # click ids; 1% bots, 1% admin paths.
        con.execute(
            f"""
            insert into trackhouse_raw.touchpoints
            with drawn as (
                select
                    j,
                    case
                        when {draw("j * 41 + 9", 100)} < {int(hot_percent)} then 0
                        else {draw("j", identities)}
                    end as i,
                    {draw("j * 17 + 5", 100)} as r,
                    timestamp '2024-01-01'
                    + to_seconds({draw("j * 31 + 7", half_year)}) as drawn_at
                from range({touchpoints}) as t (j)
            )
            select
                'tp-' || j as event_id,
                case
                    when r < 25 and ids.has_user then null
                    when r < 30 and ids.has_alias then 'old-' || drawn.i
                    when r % 2 = 1 and ids.has_second_device then 'anon-' || drawn.i || '-1'
                    else 'anon-' || drawn.i || '-0'
                end as anonymous_id,
                case when r < 25 and ids.has_user then 'user-' || drawn.i end as user_id,
                drawn_at as occurred_at,
                'https://shop.example.com/'
                || case when r = 99 then 'admin/' else '' end
                || 'p/' || (j % 500)
                || '?utm_source=' || {sources}[1 + {draw("j * 13", len(SOURCES))}]
                || case when r % 10 = 0 then '&utm_source=newsletter' else '' end
                || '&utm_medium=' || ['cpc', 'email', 'social', 'referral'][1 + r % 4]
                || '&utm_campaign=' || ['spring%20sale', 'summer+sale', '%C3%A9t%C3%A9', 'launch']
                    [1 + {draw("j * 19", 4)}]
                || case when r % 3 = 0 then '&gclid=G' || j else '' end
                || case when r % 7 = 0 then '&fbclid=F' || j else '' end
                    as url,
                'https://www.google.com/' as referrer,
                case
                    when r = 98 then 'Mozilla/5.0 (compatible; Googlebot/2.1)'
                    else 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36'
                end as user_agent,
                null as campaign,
                drawn_at as received_at,
                1 as load_sequence
            from drawn
            inner join ids on drawn.i = ids.i
            """
        )
        # Conversions: 10% pending (half of them confirmed a day later), 2%
        # deactivated; the user's id when there is one, else the first device.
        con.execute(
            f"""
            insert into trackhouse_raw.conversion_events
            with drawn as (
                select
                    k,
                    case
                        when {draw("k * 43 + 11", 100)} < {int(hot_percent)} then 0
                        else {draw("k * 23 + 1", identities)}
                    end as i,
                    {draw("k * 29 + 2", 100)} as r,
                    timestamp '2024-01-15'
                    + to_seconds({draw("k * 37 + 3", half_year - 14 * 86400)}) as drawn_at
                from range({conversions}) as t (k)
            )
            select
                'cv-' || k as event_id,
                'c-' || k as conversion_id,
                ['signup', 'purchase', 'trial'][1 + r % 3] as event,
                case when not ids.has_user then 'anon-' || drawn.i || '-0' end as anonymous_id,
                case when ids.has_user then 'user-' || drawn.i end as user_id,
                drawn_at as occurred_at,
                cast(({draw("k", 50000)}) / 100.0 as decimal(38, 6)) as value,
                case when r % 5 = 0 then 'USD' end as currency,
                r >= 10 as is_confirmed,
                null as is_active,
                null as custom_data,
                null as source_object,
                drawn_at as received_at,
                1 as load_sequence
            from drawn
            inner join ids on drawn.i = ids.i
            union all
            select
                'cv-confirm-' || k, 'c-' || k, null, null, null, drawn_at + interval 1 day,
                null, null, true, null, null, null, drawn_at + interval 1 day, 1
            from drawn
            where r < 5
            union all
            select
                'cv-deactivate-' || k, 'c-' || k, null, null, null, drawn_at + interval 2 day,
                null, null, null, false, null, null, drawn_at + interval 2 day, 1
            from drawn
            where r >= 98
            """
        )
        counts = {
            table: con.execute(f"select count(*) from trackhouse_raw.{table}").fetchone()[0]
            for table in ("touchpoints", "conversion_events", "identity_links")
        }
    finally:
        con.close()
    return counts


def dbt(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "dbt"), *args, "--profiles-dir", str(ROOT), "--project-dir", str(ROOT)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def naive_sql(settings: Any, window_days: int, source_windows: dict[str, int] | None) -> str:
    """The seed's with_attribution(last_touch): per conversion, one correlated
    subquery per attributed field, each picking the newest eligible touchpoint."""
    from trackhouse.query import relation
    from trackhouse.query.attribution import window_expression

    window, params = window_expression(window_days, source_windows)
    for name, value in params.items():  # literal, so the query runs as users write it
        window = window.replace(f":{name}", "'" + value.replace("'", "''") + "'")
    window = window.replace("utm_source", "t.utm_source")
    fields = ("touchpoint_id", "touched_at", *TRACKING, "referrer")
    subqueries = ",\n".join(
        f"""(select t.{field} from {relation("touchpoints", settings)} as t
            where t.stitched_id = c.stitched_id
              and t.touched_at < c.converted_at
              and t.touched_at >= c.converted_at - ({window}) * interval '1 day'
            order by t.touched_at desc, t.touchpoint_id desc
            limit 1) as {field}"""
        for field in fields
    )
    return f"""
        select c.conversion_id, c.converted_at, {subqueries}
        from {relation("conversions", settings)} as c
        order by c.converted_at, c.conversion_id
    """


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def per_call(settings: Any, calls: int) -> dict[str, Any]:
    """What a dashboard pays per `attribute_conversions` call: the first call of a
    process (it copies the marts into memory and prepares the conversion-touchpoint
    pairs), then the median of repeated calls (wall clock and CPU) with the default
    window and with another window each call, beside the same query through
    `fetch` (opening the warehouse file on every call, as before the copies)."""
    from trackhouse.query import fetch
    from trackhouse.query.attribution import attribute_conversions, attribution_sql

    def median_ms(fn: Any) -> tuple[float, float]:
        walls, cpus = [], []
        for _ in range(calls):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        return sorted(walls)[calls // 2] * 1000, sorted(cpus)[calls // 2] * 1000

    # A file change forces a new copy: the first call below pays for it.
    os.utime(settings.duckdb_path)
    first, _ = timed(attribute_conversions, settings=settings)
    api_wall, api_cpu = median_ms(lambda: attribute_conversions(settings=settings))
    windows = iter(range(1, calls + 1))
    other_wall, other_cpu = median_ms(
        lambda: attribute_conversions(window_days=next(windows), settings=settings)
    )
    sql, params = attribution_sql(settings)
    fetch_wall, fetch_cpu = median_ms(lambda: fetch(sql, params, settings))
    out = {
        "first_call_ms": round(first * 1000, 1),
        "calls": calls,
        "median_wall_ms": round(api_wall, 1),
        "median_cpu_ms": round(api_cpu, 1),
        "new_window_each_call_wall_ms": round(other_wall, 1),
        "new_window_each_call_cpu_ms": round(other_cpu, 1),
        "fetch_each_call_wall_ms": round(fetch_wall, 1),
        "fetch_each_call_cpu_ms": round(fetch_cpu, 1),
        "load_average": os.getloadavg()[0],
    }
    print(
        f"attribute_conversions per call: first {out['first_call_ms']} ms, then median "
        f"{api_wall:.1f} ms wall / {api_cpu:.1f} ms CPU (another window each call: "
        f"{other_wall:.1f} ms / {other_cpu:.1f} ms); opening the file each call: "
        f"{fetch_wall:.1f} ms wall / {fetch_cpu:.1f} ms CPU (load average {out['load_average']})"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--touchpoints", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--identities", type=int, default=50_000)
    parser.add_argument(
        "--hot-percent",
        type=int,
        default=0,
        help="percent of touchpoints and conversions of one identity (default 0)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouse file")
    parser.add_argument("--calls", type=int, default=30, help="repeated calls per case")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="trackhouse-bench-attribution-"))
    db = workdir / "bench.duckdb"
    env = duckdb_env(db)
    os.environ.update(env)
    target = ["--target-path", str(workdir / "target"), "--log-path", str(workdir / "logs")]
    results: dict[str, Any] = {"scale": vars(args)}
    try:
        seconds, counts = timed(
            generate, db, args.touchpoints, args.conversions, args.identities, args.hot_percent
        )
        results["generated"] = {**counts, "seconds": round(seconds, 2)}
        print(f"generated {counts} in {seconds:.1f}s")

        dbt(env, "seed", "--select", "bot_user_agents", "channel_rules", "channel_hosts", *target)
        dbt(env, "run", "--select", *MODELS, *target)  # warm-up: parse, caches
        build = dbt(env, "run", "--select", *MODELS, *target)
        run_results = json.loads((workdir / "target" / "run_results.json").read_text())
        per_model = {
            r["unique_id"].split(".")[-1]: round(r["execution_time"], 2)
            for r in run_results["results"]
        }
        results["dbt_run_seconds"] = round(build, 2)
        results["dbt_model_seconds"] = per_model
        print(f"dbt run of the attribution models: {build:.1f}s")
        for name, secs in sorted(per_model.items(), key=lambda kv: -kv[1]):
            print(f"  {name:40} {secs:7.2f}s")

        from trackhouse.query import fetch
        from trackhouse.query.attribution import attribute_conversions, attribution_sql
        from trackhouse.settings import load_settings

        settings = load_settings("duckdb", ROOT)
        marts = fetch(
            "select (select count(*) from touchpoints) as touchpoints, "
            "(select count(*) from conversions) as conversions, "
            "(select count(*) from identities) as identities, "
            "(select count(distinct stitched_id) from conversions) as converting_identities",
            settings=settings,
        )[0]
        results["marts"] = marts
        print(f"marts: {marts}")

        rows = []
        header = (
            f"{'window':34} {'api sql':>8} {'naive sql':>10} {'ratio':>6}"
            f" {'api e2e':>8} {'naive e2e':>10} {'ratio':>6} {'attributed':>10}"
        )
        print(header)
        for window_days, source_windows in WINDOWS:
            label = f"{window_days}d" + (f" {source_windows}" if source_windows else "")
            sql, params = attribution_sql(
                settings, "last_touch", window_days, source_windows, valid_only=False
            )
            naive = naive_sql(settings, window_days, source_windows)
            count = "select count(*) as n, count(touchpoint_id) as attributed from ({q}) as q"
            api_sql, (api_counts,) = timed(fetch, count.format(q=sql), params, settings)
            naive_sql_s, (naive_counts,) = timed(fetch, count.format(q=naive), {}, settings)
            api_e2e, api_rows = timed(
                attribute_conversions,
                "last_touch",
                window_days,
                source_windows,
                valid_only=False,
                settings=settings,
            )
            naive_e2e, naive_rows = timed(fetch, naive, {}, settings)
            same = [(r["conversion_id"], r["touchpoint_id"]) for r in api_rows] == [
                (r["conversion_id"], r["touchpoint_id"]) for r in naive_rows
            ]
            if not same or api_counts != naive_counts:
                sys.exit(f"window {label}: the two formulations disagree")
            row = {
                "window": label,
                "api_sql_seconds": round(api_sql, 3),
                "naive_sql_seconds": round(naive_sql_s, 3),
                "sql_ratio": round(naive_sql_s / api_sql, 1),
                "api_end_to_end_seconds": round(api_e2e, 3),
                "naive_end_to_end_seconds": round(naive_e2e, 3),
                "end_to_end_ratio": round(naive_e2e / api_e2e, 1),
                "conversions": api_counts["n"],
                "attributed": api_counts["attributed"],
            }
            rows.append(row)
            print(
                f"{label:34} {api_sql:8.2f} {naive_sql_s:10.2f} {row['sql_ratio']:6.1f}"
                f" {api_e2e:8.2f} {naive_e2e:10.2f} {row['end_to_end_ratio']:6.1f}"
                f" {api_counts['attributed']:10,}"
            )
        results["attribute_conversions"] = rows
        results["per_call"] = per_call(settings, args.calls)
    finally:
        if args.keep:
            print(f"kept {db}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    out = ROOT / "bench" / "results" / "attribution.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
