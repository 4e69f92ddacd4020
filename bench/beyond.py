"""Build time of the issue-15 marts (channels, time-decay and data-driven credits,
conversion paths, retention, stickiness, lifecycle) beside the existing marts.

    .venv/bin/python bench/beyond.py [--touchpoints 1000000] [--conversions 100000]
                                     [--identities 50000] [--events 10000000]
                                     [--users 100000] [--keep]

One DuckDB warehouse gets the raw rows of bench/attribution.py (1M touchpoints,
100k conversions, 50k identities) and of bench/activity.py (10M activity events
over a year, 100k users). Then `dbt seed` and a full `dbt run --full-refresh` of
every model (a warm-up run first, so parsing and caches are not counted), and
dbt's own execution time per model is read from run_results.json. Prints the
new models and the existing ones side by side and writes
bench/results/beyond.json. Nothing about speed is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import activity as activity_bench
import attribution as attribution_bench
import duckdb
from _common import duckdb_env

ROOT = Path(__file__).resolve().parents[1]
VARS = json.dumps({"report_timezone": activity_bench.TIMEZONE, "as_of": activity_bench.AS_OF})
# The models issue 15 added, and the two it changed (a channel, two more models).
NEW = {
    "int_touchpoints_channeled": "new",
    "int_channel_paths_sequenced": "new",
    "int_channel_removal_effects": "new",
    "conversion_paths": "new",
    "int_user_periods_active": "new",
    "retention_cohorts": "new",
    "lifecycle": "new",
    "stickiness_daily": "new",
    "stickiness_monthly": "new",
    "touchpoints": "changed (channel)",
    "attribution_credits": "changed (time_decay, data_driven)",
    "conversion_attribution": "changed (channel)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--touchpoints", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--identities", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the warehouse file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="trackhouse-bench-beyond-"))
    db = workdir / "bench.duckdb"
    env = duckdb_env(db)
    os.environ.update(env)
    target = ["--target-path", str(workdir / "target"), "--log-path", str(workdir / "logs")]
    results: dict[str, Any] = {"scale": vars(args)}
    try:
        started = time.perf_counter()
        counts = attribution_bench.generate(db, args.touchpoints, args.conversions, args.identities)
        counts |= activity_bench.generate(db, args.events, args.users)
        results["generated"] = {**counts, "seconds": round(time.perf_counter() - started, 2)}
        print(f"generated {counts}")

        attribution_bench.dbt(env, "seed", *target)
        attribution_bench.dbt(env, "run", "--vars", VARS, *target)  # warm-up
        wall = attribution_bench.dbt(env, "run", "--full-refresh", "--vars", VARS, *target)
        run_results = json.loads((workdir / "target" / "run_results.json").read_text())
        seconds = {
            r["unique_id"].split(".")[-1]: round(r["execution_time"], 2)
            for r in run_results["results"]
        }
        con = duckdb.connect(str(db), read_only=True)
        rows = {
            name: con.execute(f'select count(*) from main."{name}"').fetchone()[0]
            for name in seconds
        }
        con.close()
        results["dbt_run_wall_seconds"] = round(wall, 2)
        results["models"] = {
            name: {"seconds": s, "rows": rows[name], "status": NEW.get(name, "existing")}
            for name, s in sorted(seconds.items(), key=lambda kv: -kv[1])
        }
        new_total = sum(s for n, s in seconds.items() if NEW.get(n) == "new")
        results["new_models_seconds"] = round(new_total, 2)
        results["all_models_seconds"] = round(sum(seconds.values()), 2)
        print(f"dbt run --full-refresh of every model: {wall:.1f}s wall clock")
        print(f"{'model':34} {'status':36} {'seconds':>8} {'rows':>11}")
        for name, entry in results["models"].items():
            print(f"{name:34} {entry['status']:36} {entry['seconds']:8.2f} {entry['rows']:11,}")
        print(f"new models: {new_total:.1f}s of {sum(seconds.values()):.1f}s model time")
        out = ROOT / "bench" / "results" / "beyond.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"wrote {out}")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
