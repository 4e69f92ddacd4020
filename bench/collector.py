"""Collector benchmark (issue 14): events/s into the spool over HTTP on loopback, with
p50/p99 latency per batch, for 1 and 2 uvicorn workers; the drain of that spool into
DuckDB; and `trackhouse load` of the same events as one file, side by side.

    .venv/bin/python bench/collector.py [--events 200000] [--batch 100] [--concurrency 16]
                                        [--max-seconds 120]

The load generator is an async httpx client with a bounded number of requests in
flight, a bounded event count and a time cap; each batch is pre-encoded so the client
spends its time sending. Client and server share the machine's cores. Prints a table
and writes bench/results/collector.json. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

# (bench/ is sys.path[0] when run as a script; its statistics.py shadows the stdlib's.)
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import ROOT, duckdb_env
from load import generate

from collector_server import WRITE_KEY, Collector

BIN = Path(sys.executable).parent
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


def batches(path: Path, size: int) -> list[bytes]:
    lines = path.read_bytes().splitlines()
    return [
        b'{"batch":[' + b",".join(lines[i : i + size]) + b"]}" for i in range(0, len(lines), size)
    ]


async def send_all(url: str, bodies: list[bytes], concurrency: int, max_seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(bodies)
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for body in queue:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            answer = await client.post(
                "/v1/batch", content=body, headers={**AUTH, "Content-Type": "application/json"}
            )
            latencies.append(time.perf_counter() - started)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "seconds": elapsed,
        "batches": len(latencies),
        "statuses": statuses,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def run_collector(tmp: Path, workers: int, bodies: list[bytes], args: argparse.Namespace) -> dict:
    spool = tmp / f"spool-{workers}"
    server = Collector(
        spool_dir=spool,
        log=tmp / f"collector-{workers}.log",
        args=["--workers", str(workers), "--no-access-log", "--max-spool-bytes", str(2**33)],
    ).start()
    try:
        result = asyncio.run(send_all(server.url, bodies, args.concurrency, args.max_seconds))
    finally:
        server.stop()
    sent = result["statuses"].get(200, 0) * args.batch
    result |= {"workers": workers, "events": sent, "events_per_s": sent / result["seconds"]}
    result["spool"] = spool
    return result


def time_drain(spool: Path, db: Path) -> tuple[float, int]:
    env = duckdb_env(db)
    code = (
        "import sys; from trackhouse.spool import drain; "
        "r = drain(sys.argv[1]); print(r.accepted + r.duplicates)"
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(spool)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, int(proc.stdout.strip())


def time_load(path: Path, db: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "trackhouse"), "load", str(path), "--no-progress"],
        env=duckdb_env(db),
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()
    results: dict = {"events": args.events, "batch": args.batch, "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory(prefix="trackhouse-bench-collector-") as tmp:
        tmpdir = Path(tmp)
        path = tmpdir / "events.ndjson"
        results["mix"] = generate(path, args.events)
        bodies = batches(path, args.batch)
        results["batch_kb"] = round(sum(map(len, bodies)) / len(bodies) / 1024, 1)
        runs = [run_collector(tmpdir, w, bodies, args) for w in (1, 2)]
        for run in runs:
            results[f"http_{run['workers']}_worker"] = {
                "events": run["events"],
                "seconds": round(run["seconds"], 2),
                "events_per_s": round(run["events_per_s"]),
                "batch_p50_ms": round(run["p50_ms"], 1),
                "batch_p99_ms": round(run["p99_ms"], 1),
                "statuses": run["statuses"],
            }
        drain_s, drained = time_drain(runs[0]["spool"], tmpdir / "drain.duckdb")
        load_s = time_load(path, tmpdir / "load.duckdb")
    results["drain_to_duckdb"] = {
        "events": drained,
        "seconds": round(drain_s, 2),
        "events_per_s": round(drained / drain_s),
    }
    results["trackhouse_load_file"] = {
        "events": args.events,
        "seconds": round(load_s, 2),
        "events_per_s": round(args.events / load_s),
    }
    http1 = runs[0]["seconds"] + drain_s
    results["ratio_collector_1_worker_plus_drain_to_load"] = round(http1 / load_s, 2)
    results["ratio_drain_to_load"] = round(drain_s / load_s, 2)
    results["cpus"] = os.cpu_count()
    results["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "collector.json").write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
