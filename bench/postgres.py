"""PostgreSQL benchmark (issue 7), in one run on a server it starts itself:

1. `trackhouse load` of N demo events (default 1M, NDJSON) into PostgreSQL, against
   the ceiling: `psql \\copy` of the same rows — the raw tables exported as CSV from
   the loaded database — into fresh copies of those tables (same columns and keys).
2. `dbt build` of the same data on PostgreSQL and on DuckDB (data tests included, unit
   tests left out: they do not depend on the data).

    .venv/bin/python bench/postgres.py [--events 1000000] [--fast] [--load-only]
                                       [--baseline 860baca] [--split]

--load-only skips the dbt builds; --baseline also times the load by an older
commit of trackhouse (into a second database, same server, same file); --split also
measures where the load's time goes, into a third database: a process's start-up
(`trackhouse load` of an empty file), then in this process, one step after the other,
parsing each chunk (`loader.parse_chunk`, as `trackhouse load` does) and writing it
(`writer.write_batch`), so that the writer can be set against `\\copy` alone.

The server runs with fsync on unless --fast (the test-suite settings). Prints a
table and writes bench/results/postgres.json. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from _common import timed_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from trackhouse.demo import generate_events  # noqa: E402
from trackhouse.schema import DATA_TABLES, DEFAULT_RAW_SCHEMA  # noqa: E402

import pg_server  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
END = dt.date(2024, 6, 1)
EVENTS_PER_USER = 81  # the demo's yield over 120 days, measured
DBNAME = "trackhouse_bench"


def write_events(path: Path, count: int) -> int:
    """The first `count` demo events (time order) of enough simulated users."""
    if path.exists():
        return sum(1 for _ in path.open("rb"))
    users = count // EVENTS_PER_USER + 50
    tmp = path.with_suffix(".part")
    lines = 0
    with tmp.open("wb") as out:
        for event in islice(generate_events(users=users, days=120, seed=42, end=END), count):
            out.write(orjson.dumps(event) + b"\n")
            lines += 1
    tmp.rename(path)
    return lines


def copy_ceiling(server: pg_server.PostgresServer, workdir: Path) -> tuple[float, int]:
    """Export every raw table as CSV, then time `\\copy` into fresh copies (one psql)."""
    raw = DEFAULT_RAW_SCHEMA
    export, load = [], ["\\timing off", "create schema bench_copy;"]
    rows = 0
    with server.connect(DBNAME) as conn:
        for table in DATA_TABLES:
            rows += conn.execute(f'select count(*) from {raw}."{table.name}"').fetchone()[0]
    for table in DATA_TABLES:
        csv = workdir / f"{table.name}.csv"
        export.append(f"\\copy {raw}.{table.name} to '{csv}' with (format csv)")
        load.append(
            f"create table bench_copy.{table.name} (like {raw}.{table.name} including all);"
        )
    for name, script in (("export", export), ("create", load)):
        (workdir / f"{name}.sql").write_text("\n".join(script) + "\n")
        subprocess.run(
            server.psql(DBNAME, "-f", str(workdir / f"{name}.sql")), check=True, capture_output=True
        )
    copies = "\n".join(
        f"\\copy bench_copy.{t.name} from '{workdir / (t.name + '.csv')}' with (format csv)"
        for t in DATA_TABLES
    )
    (workdir / "copy.sql").write_text(copies)
    seconds, _ = timed_process(
        server.psql(DBNAME, "-f", str(workdir / "copy.sql")), dict(os.environ), "psql \\copy"
    )
    return seconds, rows


def load_average() -> float:
    """The 1-minute load average (the machine is shared: it says how busy it was)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def split(
    server: pg_server.PostgresServer, data: Path, workdir: Path, base: dict[str, str]
) -> dict[str, float]:
    """A load's time in parts, into a database of its own: start-up (a whole
    `trackhouse load` of an empty file: interpreter, imports, settings, connection,
    schema check), then parse and write of each chunk one after the other in this
    process (`trackhouse load` overlaps them when a file has several chunks)."""
    from trackhouse import loader, privacy
    from trackhouse.fastpath import FastPath
    from trackhouse.settings import load_settings
    from trackhouse.writer import write_batch

    dbname = DBNAME + "_split"
    server.create_database(dbname)
    env = {**base, **server.env(dbname)}
    timed_process([str(BIN / "trackhouse"), "init"], env, "trackhouse init (split)")
    empty = workdir / "empty.ndjson"
    empty.write_bytes(b"")
    startup_s, _ = timed_process(
        [str(BIN / "trackhouse"), "load", str(empty), "--no-progress"],
        env,
        "trackhouse load (an empty file)",
    )
    print("... parse, then write, chunk by chunk (in process)", file=sys.stderr, flush=True)
    saved = dict(os.environ)
    os.environ.update(server.env(dbname))
    try:
        settings = load_settings(project_dir=ROOT)
        report = loader.LoadReport()
        received_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        parse_s = write_s = 0.0
        fast = FastPath()
        with data.open("rb") as stream:
            chunks = loader._chunks(stream, loader.BATCH_SIZE)
            while True:
                started = time.perf_counter()
                chunk = next(chunks, None)
                if chunk is None:
                    break
                batch = loader.parse_chunk(
                    chunk,
                    source=str(data.resolve()),
                    received_at=received_at,
                    allowed_events=None,
                    report=report,
                    fast=fast,
                )
                privacy.suppress(batch, settings, report)
                parsed = time.perf_counter()
                write_batch(settings, batch)
                parse_s += parsed - started
                write_s += time.perf_counter() - parsed
        fast.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"startup_seconds": startup_s, "parse_seconds": parse_s, "write_seconds": write_s}


def dbt_build(env: dict[str, str], target: str) -> float:
    target_path = RESULTS / f"dbt-{target}"
    vars_ = orjson.dumps({"as_of": (END - dt.timedelta(days=1)).isoformat()}).decode()
    # Unit tests are left out: they take the same time whatever the data.
    cmd = [
        str(BIN / "dbt"), "build", "--exclude", "test_type:unit",
        "--profiles-dir", str(ROOT), "--project-dir", str(ROOT),
        "--target-path", str(target_path), "--log-path", str(target_path), "--vars", vars_,
    ]  # fmt: skip
    seconds, _ = timed_process(cmd, env, f"dbt build ({target})")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--fast", action="store_true", help="fsync off, as in the test suite")
    parser.add_argument("--load-only", action="store_true", help="skip the dbt builds")
    parser.add_argument("--baseline", help="an older commit whose load is timed too")
    parser.add_argument("--split", action="store_true", help="start-up, parse and write apart")
    parser.add_argument(
        "--batch-size", type=int, help="trackhouse load's --batch-size (default: its own)"
    )
    args = parser.parse_args()
    load_before = load_average()
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = ROOT / "data" / f"bench-postgres-{args.events}.ndjson"
    data.parent.mkdir(exist_ok=True)
    print(f"... demo events -> {data}", file=sys.stderr, flush=True)
    events = write_events(data, args.events)
    workdir = RESULTS / "postgres-copy"
    workdir.mkdir(exist_ok=True)

    server = pg_server.start(durable=not args.fast)
    try:
        server.create_database(DBNAME)
        base = {**os.environ, "TRACKHOUSE_PROJECT_DIR": str(ROOT), "DBT_PROFILES_DIR": str(ROOT)}
        pg_env = {**base, **server.env(DBNAME)}
        timed_process([str(BIN / "trackhouse"), "init"], pg_env, "trackhouse init")
        batch = ["--batch-size", str(args.batch_size)] if args.batch_size else []
        load_s, out = timed_process(
            [
                str(BIN / "trackhouse"),
                "load",
                str(data),
                "--format",
                "json",
                "--no-progress",
                *batch,
            ],
            pg_env,
            "trackhouse load (postgres)",
        )
        report = json.loads(out[out.index("[\n") :])[0]
        copy_s, raw_rows = copy_ceiling(server, workdir)
        for csv in workdir.glob("*.csv"):
            csv.unlink()
        old_s = None
        if args.baseline:
            import tarfile
            from io import BytesIO

            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline, "python"],
                capture_output=True,
                check=True,
            ).stdout
            with tarfile.open(fileobj=BytesIO(archive)) as tar:
                tar.extractall(workdir / "baseline", filter="data")
            server.create_database(DBNAME + "_old")
            old_env = {
                **base,
                **server.env(DBNAME + "_old"),
                "PYTHONPATH": str(workdir / "baseline" / "python"),
            }
            code = "import sys; from trackhouse.cli import main; sys.exit(main())"
            cli = [sys.executable, "-c", code]
            timed_process([*cli, "init"], old_env, "trackhouse init (baseline)")
            old_s, _ = timed_process(
                [*cli, "load", str(data), "--format", "json", "--no-progress"],
                old_env,
                f"trackhouse load (postgres, {args.baseline})",
            )
        parts = split(server, data, workdir, base) if args.split else None
        pg_build_s = 0.0 if args.load_only else dbt_build(pg_env, "postgres")
        with server.connect() as conn:
            version = conn.execute("show server_version").fetchone()[0]
    finally:
        server.stop()

    duck_path = RESULTS / "bench-postgres.duckdb"
    duck_path.unlink(missing_ok=True)
    duck_env = {**base, "TRACKHOUSE_TARGET": "duckdb", "TRACKHOUSE_DUCKDB_PATH": str(duck_path)}
    duck_load_s, _ = timed_process(
        [str(BIN / "trackhouse"), "load", str(data), "--no-progress"],
        duck_env,
        "trackhouse load (duckdb)",
    )
    duck_build_s = 0.0 if args.load_only else dbt_build(duck_env, "duckdb")
    duck_path.unlink(missing_ok=True)

    result: dict[str, Any] = {
        "events": events,
        "accepted": report["accepted"],
        "raw_rows": raw_rows,
        "postgres": {
            "version": version,
            "durable": not args.fast,
            "load_seconds": round(load_s, 2),
            "load_events_per_second": round(events / load_s),
            "copy_seconds": round(copy_s, 2),
            "copy_events_per_second": round(events / copy_s),
            "load_vs_copy": round(load_s / copy_s, 2),
            "baseline": args.baseline,
            "baseline_load_seconds": round(old_s, 2) if old_s else None,
            "baseline_load_vs_copy": round(old_s / copy_s, 2) if old_s else None,
            "dbt_build_seconds": round(pg_build_s, 2),
            "split": (
                {k: round(v, 2) for k, v in parts.items()}
                | {"write_vs_copy": round(parts["write_seconds"] / copy_s, 2)}
                if parts
                else None
            ),
        },
        "duckdb": {
            "load_seconds": round(duck_load_s, 2),
            "dbt_build_seconds": round(duck_build_s, 2),
        },
        "dbt_build_postgres_vs_duckdb": (
            round(pg_build_s / duck_build_s, 2) if duck_build_s else None
        ),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}",
        "load_average": [load_before, load_average()],
    }
    (RESULTS / "postgres.json").write_text(json.dumps(result, indent=2))
    p, d = result["postgres"], result["duckdb"]
    fsync = "fsync off" if args.fast else "fsync on"
    lines = [
        f"PostgreSQL {version} ({fsync}): {events:,} events -> {raw_rows:,} raw rows",
        f"  trackhouse load      {p['load_seconds']:8.1f} s {p['load_events_per_second']:>9,}/s",
        f"  psql \\copy ceiling  {p['copy_seconds']:8.1f} s {p['copy_events_per_second']:>9,}/s",
        f"  load / copy          {p['load_vs_copy']:8.2f} x",
        f"  baseline {args.baseline}: {p['baseline_load_seconds']} s, "
        f"{p['baseline_load_vs_copy']} x copy",
    ]
    if parts:
        q = p["split"]
        lines.append(
            f"  split: start-up {q['startup_seconds']} s, parse {q['parse_seconds']} s, "
            f"write {q['write_seconds']} s ({q['write_vs_copy']} x copy)"
        )
    lines += [
        "dbt build",
        f"  postgres             {p['dbt_build_seconds']:8.1f} s",
        f"  duckdb               {d['dbt_build_seconds']:8.1f} s"
        f"  (trackhouse load into duckdb: {d['load_seconds']:.1f} s)",
        f"  postgres / duckdb    {result['dbt_build_postgres_vs_duckdb']} x",
        f"load average {result['load_average'][0]} at the start, "
        f"{result['load_average'][1]} at the end",
        f"results: {RESULTS / 'postgres.json'}",
    ]
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
