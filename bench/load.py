"""Load benchmark (issues 2 and 16): `trackhouse load` of a realistic Segment export
into DuckDB against DuckDB's own `read_json` of the same file into one table (the
floor), whole processes, paired in each run; optionally the same load by an older
commit of trackhouse (the "old" column), and 1M buffered Python API calls.

    .venv/bin/python bench/load.py [--lines 1000000] [--runs 3] [--baseline 860baca]
                                   [--api-calls 0]

The export: `trackhouse demo` events (page views, track, identify, group, alias,
statistics), with about 0.4% bad lines (malformed JSON, a missing messageId, a
timestamp without offset, invalid UTF-8) and 0.2% repeated lines (duplicates);
it is cached in data/. Each run starts from an empty warehouse and times the
process from start to exit, with its peak RSS (/usr/bin/time). Prints a table and
writes bench/results/load.json. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
EVENTS_PER_USER = 81  # the demo's yield over 120 days, measured
END = dt.date(2024, 6, 1)

BAD = [
    b'{"type": "page", "messageId": "broken", ',
    b'{"type":"track","event":"signup","timestamp":"2024-05-01T10:00:00Z","userId":"u"}',
    b'{"type":"page","messageId":"BAD","timestamp":"2024-05-01 10:00:00","anonymousId":"a"}',
    b'{"type":"page","messageId":"BAD","anonymousId":"caf\xe9","timestamp":"2024-05-01T10:00:00Z"}',
]


def write_export(path: Path, lines: int) -> dict[str, int]:
    """The first `lines` demo events (time order), with bad and repeated lines mixed in."""
    from trackhouse.demo import generate_events

    counts: dict[str, int] = {"bad": 0, "repeated": 0}
    if path.exists():
        return json.loads(path.with_suffix(".json").read_text())
    users = lines // EVENTS_PER_USER + 50
    tmp = path.with_suffix(".part")
    written = 0
    previous = b""
    with tmp.open("wb") as out:
        events = generate_events(users=users, days=120, seed=42, end=END)
        for i, event in enumerate(islice(events, lines)):
            if i % 250 == 125:  # 0.4% bad lines
                bad = BAD[(i // 250) % len(BAD)].replace(b"BAD", f"bad-{i}".encode())
                out.write(bad + b"\n")
                counts["bad"] += 1
            elif i % 500 == 250 and previous:  # 0.2% repeated lines
                out.write(previous)
                counts["repeated"] += 1
            else:
                line = orjson.dumps(event) + b"\n"
                out.write(line)
                previous = line
                counts[event["type"]] = counts.get(event["type"], 0) + 1
            written += 1
    tmp.rename(path)
    path.with_suffix(".json").write_text(json.dumps(counts))
    return counts


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds, peak RSS (MiB) and stdout of one whole process."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *cmd], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return seconds, peak_kib / 1024, done.stdout


def extract_baseline(ref: str, into: Path) -> Path:
    """The python/ directory of an older commit, to run its `trackhouse load`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "python"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "python"


def load_cmd(path: Path, pythonpath: Path | None) -> list[str]:
    code = "import sys; from trackhouse.cli import main; sys.exit(main())"
    prefix = [sys.executable, "-c", code]
    if pythonpath is None:
        prefix = [str(BIN / "trackhouse")]
    return [*prefix, "load", str(path), "--no-progress", "--format", "json"]


READ_JSON = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute(
    "create table events as select * from read_json(?, format = 'newline_delimited', "
    "ignore_errors = true)",
    [sys.argv[2]],
)
print(con.execute("select count(*) from events").fetchone()[0])
con.close()
"""


def time_api(calls: int, db: Path) -> float:
    os.environ.update(
        {
            "TRACKHOUSE_TARGET": "duckdb",
            "TRACKHOUSE_DUCKDB_PATH": str(db),
            "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        }
    )
    from trackhouse import Tracker

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    started = time.perf_counter()
    with Tracker(flush_interval=0) as tracker:  # spooled; drained at close (DuckDB)
        for i in range(calls):
            tracker.record_touchpoint(
                f"anon-{i % 100_000}", f"https://shop.example.com/?utm_source=s{i % 7}", at=at
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="an older commit to time too (e.g. 860baca)")
    parser.add_argument("--new", help="a commit to time as new (default: the working tree)")
    parser.add_argument("--api-calls", type=int, default=0)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = ROOT / "data" / f"bench-load-{args.lines}.ndjson"
    data.parent.mkdir(exist_ok=True)
    print(f"... export -> {data}", file=sys.stderr, flush=True)
    mix = write_export(data, args.lines)

    samples: dict[str, list[tuple[float, float]]] = {"new": [], "read_json": []}
    if args.baseline:
        samples["old"] = []
    summaries: dict[str, Any] = {}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="trackhouse-bench-") as tmp:
        tmpdir = Path(tmp)
        old_path = extract_baseline(args.baseline, tmpdir / "old") if args.baseline else None
        new_path = extract_baseline(args.new, tmpdir / "new") if args.new else None
        base = {**os.environ, "TRACKHOUSE_TARGET": "duckdb", "TRACKHOUSE_PROJECT_DIR": str(ROOT)}
        for run in range(args.runs):
            loads.append(os.getloadavg()[0])
            for name in samples:  # paired: each run times every contender once
                db = tmpdir / f"{name}-{run}.duckdb"
                env = {**base, "TRACKHOUSE_DUCKDB_PATH": str(db)}
                if name == "read_json":
                    cmd = [sys.executable, "-c", READ_JSON, str(db), str(data)]
                else:
                    pythonpath = old_path if name == "old" else new_path
                    if pythonpath is not None:
                        env["PYTHONPATH"] = str(pythonpath)
                    cmd = load_cmd(data, pythonpath)
                print(f"... run {run + 1}/{args.runs}: {name}", file=sys.stderr, flush=True)
                seconds, peak, out = measure(cmd, env)
                samples[name].append((seconds, peak))
                if name != "read_json":
                    # (an old DuckDB progress bar may precede the report on stdout)
                    report = json.loads(out[out.index("[\n") :])[0]
                    summaries[name] = {
                        k: report[k] for k in ("received", "accepted", "rejected", "duplicates")
                    }
                db.unlink(missing_ok=True)
        api_s = time_api(args.api_calls, tmpdir / "api.duckdb") if args.api_calls else None

    def med(name: str, i: int) -> float:
        # (bench/statistics.py shadows the standard module of that name)
        values = sorted(s[i] for s in samples[name])
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    floor = med("read_json", 0)
    result: dict[str, Any] = {
        "lines": args.lines,
        "file_mb": round(data.stat().st_size / 1e6, 1),
        "mix": mix,
        "runs": args.runs,
        "seconds": {name: [round(s[0], 2) for s in samples[name]] for name in samples},
        "median_seconds": {name: round(med(name, 0), 2) for name in samples},
        "peak_rss_mib": {name: round(max(s[1] for s in samples[name])) for name in samples},
        "ratio_to_read_json": {
            name: round(med(name, 0) / floor, 2) for name in samples if name != "read_json"
        },
        "lines_per_second": {name: round(args.lines / med(name, 0)) for name in samples},
        "reports": summaries,
        "baseline": args.baseline,
        "new": args.new or "working tree",
        "load_average_1min": [round(x, 1) for x in loads],
        "api_calls": args.api_calls,
        "api_calls_per_s": round(args.api_calls / api_s) if api_s else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Python "
        f"{platform.python_version()}",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (RESULTS / "load.json").write_text(json.dumps(result, indent=2))
    print(f"\n{args.lines:,} lines ({result['file_mb']} MB), median of {args.runs} paired runs")
    for name in samples:
        ratio = result["ratio_to_read_json"].get(name)
        print(
            f"  {name:<10} {result['median_seconds'][name]:7.2f} s"
            f"  peak {result['peak_rss_mib'][name]:5d} MiB"
            + (f"  {ratio:5.2f} x read_json" if ratio else "  (floor)")
        )
    print(f"  load average (1 min) at each run: {result['load_average_1min']}")
    print(f"results: {RESULTS / 'load.json'}")


if __name__ == "__main__":
    main()
