"""Load benchmark (issue 2): `trackhouse load` of 1M events into DuckDB vs DuckDB's own
`read_json` of the same file (the ceiling), and 1M buffered Python API calls.

    .venv/bin/python bench/load.py [--events 1000000] [--api-calls 1000000]

Prints a table and writes bench/results/load.json. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SOURCES = ["google", "facebook", "newsletter", "linkedin", "bing"]
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"


def generate(path: Path, n: int, seed: int = 1) -> dict[str, int]:
    """A Segment export shape: 80% page views (a quarter with campaign parameters),
    15% track (conversions), 4% identify, 1% group/alias."""
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    kinds: dict[str, int] = {}
    with open(path, "wb") as f:
        for i in range(n):
            at = (
                (start + timedelta(seconds=i * 7 + rnd.randrange(7)))
                .isoformat()
                .replace("+00:00", "Z")
            )
            anon = f"anon-{rnd.randrange(200_000)}"
            user = f"user-{rnd.randrange(50_000)}" if rnd.random() < 0.6 else None
            r = rnd.random()
            if r < 0.80:
                query = ""
                if rnd.random() < 0.25:
                    query = (
                        f"?utm_source={rnd.choice(SOURCES)}&utm_medium=cpc"
                        f"&utm_campaign=spring%20sale&gclid=g{i}"
                    )
                event = {
                    "type": "page",
                    "context": {
                        "page": {
                            "url": f"https://shop.example.com/p/{i % 5000}{query}",
                            "referrer": "https://www.google.com/",
                        },
                        "userAgent": AGENT,
                        "library": {"name": "analytics.js", "version": "4.1.0"},
                    },
                    "properties": {"title": "Product", "path": f"/p/{i % 5000}"},
                }
            elif r < 0.95:
                event = {
                    "type": "track",
                    "event": rnd.choice(["signup", "purchase", "trial"]),
                    "properties": {
                        "value": round(rnd.uniform(5, 200), 2),
                        "currency": "EUR",
                        "plan": "pro",
                    },
                }
            elif r < 0.99:
                user = user or f"user-{rnd.randrange(50_000)}"
                event = {"type": "identify", "traits": {"created_at": at, "is_active": True}}
            else:
                user = user or f"user-{rnd.randrange(50_000)}"
                event = {"type": "alias", "previousId": anon}
            event.update({"messageId": f"bench-{i}", "timestamp": at, "anonymousId": anon})
            if user:
                event["userId"] = user
            kinds[event["type"]] = kinds.get(event["type"], 0) + 1
            f.write(orjson.dumps(event))
            f.write(b"\n")
    return kinds


def time_cli_load(path: Path, db: Path) -> tuple[float, str]:
    env = {
        **os.environ,
        "TRACKHOUSE_TARGET": "duckdb",
        "TRACKHOUSE_DUCKDB_PATH": str(db),
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
    }
    started = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "trackhouse"), "load", str(path), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, proc.stdout.strip()


def time_read_json(path: Path, db: Path) -> float:
    started = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute(
        f"create table events as select * from read_json('{path}', format = 'newline_delimited')"
    )
    con.close()
    return time.perf_counter() - started


def time_api(calls: int, db: Path) -> float:
    os.environ.update(
        {
            "TRACKHOUSE_TARGET": "duckdb",
            "TRACKHOUSE_DUCKDB_PATH": str(db),
            "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        }
    )
    from trackhouse import Tracker

    at = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    with Tracker(flush_interval=0) as tracker:  # spooled; drained at close (DuckDB)
        for i in range(calls):
            tracker.record_touchpoint(
                f"anon-{i % 100_000}",
                f"https://shop.example.com/?utm_source=s{i % 7}",
                user_agent=AGENT,
                at=at,
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--api-calls", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trackhouse-bench-") as tmp:
        tmpdir = Path(tmp)
        path = tmpdir / "events.ndjson"
        t0 = time.perf_counter()
        kinds = generate(path, args.events)
        gen_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        load_s, summary = time_cli_load(path, tmpdir / "load.duckdb")
        ceiling_s = time_read_json(path, tmpdir / "ceiling.duckdb")
        api_s = time_api(args.api_calls, tmpdir / "api.duckdb") if args.api_calls else 0.0
    results = {
        "events": args.events,
        "mix": kinds,
        "file_mb": round(size_mb, 1),
        "generate_s": round(gen_s, 2),
        "trackhouse_load_s": round(load_s, 2),
        "trackhouse_load_events_per_s": round(args.events / load_s),
        "loader_summary": summary,
        "duckdb_read_json_s": round(ceiling_s, 2),
        "duckdb_read_json_events_per_s": round(args.events / ceiling_s),
        "ratio_load_to_ceiling": round(load_s / ceiling_s, 2),
        "api_calls": args.api_calls,
        "api_s": round(api_s, 2),
        "api_calls_per_s": round(args.api_calls / api_s) if api_s else None,
        "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(results, indent=2))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
