"""The spool: per-call latency of `record_touchpoint`, and drain throughput.

1. Latency of one `record_touchpoint` call (p50 / p99 / max), the app-side cost:
   with the in-app drain thread running against an idle DuckDB file, against the
   same file held by another process (a writer that never lets go), and against
   PostgreSQL; each with the default (write, fsync every 0.2 s in the background)
   and with `fsync_each_call=True`.
2. Drain throughput: the same demo events spooled as segments and drained
   (`spool.drain`, i.e. `trackhouse load --spool DIR`) vs `trackhouse load` of
   them as one NDJSON file (`load_files`, same process), into DuckDB and into
   PostgreSQL (fsync on).

    .venv/bin/python bench/spool.py [--events 200000] [--calls 20000]

Bounded: --calls calls per latency case, --events events per throughput case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from _common import duckdb_env  # noqa: E402

from trackhouse.demo import generate_events  # noqa: E402

import pg_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("create table if not exists hold (x int)")
    con.execute("begin transaction")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)

LATENCY = textwrap.dedent(
    """
    import json, sys, time
    from datetime import UTC, datetime
    from trackhouse import Tracker
    calls, fsync = int(sys.argv[1]), sys.argv[2] == "1"
    errors = []
    t = Tracker(drain="thread", flush_interval=0.2, drain_interval=0.5, fsync_each_call=fsync,
                on_error=lambda e, w: errors.append(type(e).__name__))
    at = datetime(2024, 3, 1, 10, tzinfo=UTC)
    url = "https://shop.example/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
    for i in range(500):
        t.record_touchpoint(f"w{i}", url, at=at)
    ns = []
    for i in range(calls):
        s = time.perf_counter_ns()
        t.record_touchpoint(f"anon-{i}", url, user_agent="Mozilla/5.0", at=at)
        ns.append(time.perf_counter_ns() - s)
    t.close()
    print(json.dumps({"ns": ns, "drain_errors": len(errors)}))
    """
)


def percentiles(ns: list[int]) -> dict[str, float]:
    # (not `statistics.quantiles`: bench/statistics.py shadows the module here)
    ordered = sorted(ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 1)

    return {"p50_us": at(0.50), "p99_us": at(0.99), "max_us": at(1.0)}


def latency(env: dict[str, str], calls: int, fsync: bool) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", LATENCY, str(calls), "1" if fsync else "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    out = json.loads(done.stdout.splitlines()[-1])
    return {**percentiles(out["ns"]), "drain_errors": out["drain_errors"]}


def write_events(path: Path, count: int) -> None:
    with path.open("wb") as f:
        for i, event in enumerate(generate_events(users=count // 80 + 50, days=120, seed=7)):
            if i >= count:
                break
            f.write(orjson.dumps(event) + b"\n")


def spool_file(src: Path, directory: Path) -> float:
    """Spool every line of `src` (as a collector would, 500 per append); seconds taken."""
    from trackhouse.spool import Spool

    spool = Spool(directory, source="collector")
    started = time.perf_counter()
    lines: list[bytes] = []
    with src.open("rb") as f:
        for line in f:
            lines.append(line)
            if len(lines) == 500:
                spool.append(lines)
                lines = []
    spool.append(lines)
    spool.close()
    return time.perf_counter() - started


def load_file(env: dict[str, str], src: Path) -> dict[str, float]:
    """`trackhouse load` of the events as one file (in this process), into `env`'s target."""
    from trackhouse.loader import load_files
    from trackhouse.settings import load_settings

    os.environ.update(env)
    report = load_files([src], settings=load_settings(), progress=False)
    assert report.balanced and report.accepted > 0
    return {"load_s": report.seconds, "accepted": report.accepted}


def drain_spool(env: dict[str, str], src: Path, work: Path, events: int) -> dict[str, float]:
    """Spool the same events, then drain them into `env`'s (empty) target."""
    from trackhouse.settings import load_settings
    from trackhouse.spool import drain

    os.environ.update(env)
    spool_dir = work / "spool"
    spooled = spool_file(src, spool_dir)
    report = drain(spool_dir, load_settings(), progress=False)
    assert report.balanced and report.received == events
    return {"spool_append_s": spooled, "drain_s": report.seconds, "drain_accepted": report.accepted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-spool-", dir=RESULTS))
    results: dict[str, object] = {"events": args.events, "calls": args.calls}
    try:
        # -- latency ------------------------------------------------------------
        db = work / "lat.duckdb"
        env = duckdb_env(db) | {"TRACKHOUSE_LOCK_TIMEOUT": "1"}
        subprocess.run(
            [str(Path(sys.executable).parent / "trackhouse"), "init"], env=env, check=True
        )
        lat: dict[str, object] = {}
        for fsync in (False, True):
            key = "fsync_each_call" if fsync else "default"
            lat[f"duckdb idle, {key}"] = latency(env, args.calls, fsync)
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLD, str(db), "600"],
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
                lat[f"duckdb locked, {key}"] = latency(env, args.calls, fsync)
            finally:
                holder.kill()
                holder.wait()
        results["latency"] = lat

        # -- throughput -----------------------------------------------------------
        src = work / "events.ndjson"
        write_events(src, args.events)
        results["duckdb"] = load_file(duckdb_env(work / "load.duckdb"), src) | drain_spool(
            duckdb_env(work / "drain.duckdb"), src, work / "duck", args.events
        )
        server = pg_server.start(durable=True)
        try:
            base = {
                **os.environ,
                "TRACKHOUSE_PROJECT_DIR": str(ROOT),
                "DBT_PROFILES_DIR": str(ROOT),
            }
            for name in ("bench_load", "bench_drain", "bench_latency"):
                server.create_database(name)
            results["postgres"] = load_file({**base, **server.env("bench_load")}, src) | (
                drain_spool({**base, **server.env("bench_drain")}, src, work / "pg", args.events)
            )
            lat_env = {**base, **server.env("bench_latency")}
            subprocess.run(
                [str(Path(sys.executable).parent / "trackhouse"), "init"], env=lat_env, check=True
            )
            lat["postgres, default"] = latency(lat_env, args.calls, False)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    results["at"] = stamp
    (RESULTS / "spool.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"record_touchpoint latency ({args.calls:,} calls each, in-app drain thread running):")
    for case, r in lat.items():
        print(
            f"  {case:32s} p50 {r['p50_us']:8.1f} µs  p99 {r['p99_us']:8.1f} µs"  # type: ignore[index]
            f"  max {r['max_us']:9.1f} µs  drain errors {r['drain_errors']}"
        )  # type: ignore[index]
    for target in ("duckdb", "postgres"):
        r = results[target]  # type: ignore[assignment]
        n = args.events
        print(
            f"{target:9s} trackhouse load (file) {r['load_s']:6.2f} s ({n / r['load_s']:9,.0f}/s)"  # type: ignore[index]
            f" | spool append {r['spool_append_s']:5.2f} s"  # type: ignore[index]
            f" | drain {r['drain_s']:6.2f} s ({n / r['drain_s']:9,.0f}/s)"  # type: ignore[index]
        )


if __name__ == "__main__":
    main()
