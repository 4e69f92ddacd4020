"""PostgreSQL under concurrent load: every event lands exactly once, and builds lose nothing.

Real `trackhouse load` processes run at the same time on overlapping files (each
in its own order, so their transactions touch the same message ids in different
orders), with small batches and a slowed-down ledger so their transactions overlap.
A `dbt build` runs while some of them are still loading; the next build must see
every event: its marts equal those of a `--full-refresh` build of the same data.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from trackhouse.demo import generate_events
from trackhouse.loader import load_files
from trackhouse.schema import EVENT_TABLES

from conftest import ROOT, TARGETS, Warehouse

BIN = Path(sys.executable).parent
END = dt.date(2024, 6, 1)
VARS = {"as_of": "2024-05-31"}
LOADERS = 4

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.xdist_group("postgres-concurrency"),
    pytest.mark.skipif(
        "postgres" not in TARGETS,
        reason="TRACKHOUSE_TEST_TARGETS excludes postgres (" + ",".join(TARGETS) + ")",
    ),
]


def new_warehouse(pg: Any, tmp: Path) -> Warehouse:
    dbname = f"th_conc_{uuid.uuid4().hex[:8]}"
    pg.create_database(dbname)
    env = {
        **pg.env(dbname),
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        "DBT_PROFILES_DIR": str(ROOT),
    }
    tmp.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return Warehouse(target="postgres", env=env, tmp=tmp)


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def start_loader(wh: Warehouse, path: Path, batch_size: int) -> subprocess.Popen[str]:
    cmd = [str(BIN / "trackhouse"), "load", str(path), "--batch-size", str(batch_size)]
    return subprocess.Popen(
        [*cmd, "--format", "json", "--no-progress"],
        cwd=ROOT,
        env=_env(wh),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _env(wh: Warehouse) -> dict[str, str]:
    return {**os.environ, **wh.env}


def finish(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{what} exited {proc.returncode}\n{out[-3000:]}\n{err[-3000:]}"
    return json.loads(out)[0] if out.lstrip().startswith("[") else {"stdout": out}


def raw_rows(wh: Warehouse, table: str) -> list[tuple[Any, ...]]:
    """A raw table without the columns that say when, in which batch and from which
    file a row came (load_sequence numbers batches in commit order, which concurrent
    loaders interleave)."""
    rows = wh.query(f'select * from "{wh.settings.raw_schema}"."{table}"')
    skip = {"received_at", "load_sequence", "source", "line_number"}
    return sorted(
        (tuple(v for k, v in row.items() if k not in skip) for row in rows),
        key=lambda r: tuple((v is None, str(v)) for v in r),
    )


def slow_down_the_ledger(pg: Any, wh: Warehouse) -> None:
    """1 ms per ledger row, as on a busy server: concurrent batches then overlap in
    time (unslowed, each insert takes about a millisecond and two rarely meet), so
    two loaders taking the same message ids in different orders would deadlock."""
    with pg.connect(wh.env["TRACKHOUSE_PG_DBNAME"]) as conn:
        conn.execute(
            "create function th_test_slow() returns trigger language plpgsql as "
            "$$ begin perform pg_sleep(0.001); return new; end $$"
        )
        conn.execute(
            f"create trigger th_test_slow before insert on {_raw(wh, 'events')} "
            "for each row execute function th_test_slow()"
        )


@pytest.fixture(scope="module")
def demo_lines() -> list[bytes]:
    events = generate_events(users=70, days=24, seed=23, end=END)
    return [orjson.dumps(e) for e in events]


def test_concurrent_loaders_of_overlapping_files_land_every_event_once(
    pg: Any, tmp_path: Path, demo_lines: list[bytes]
) -> None:
    rng = random.Random(5)
    # Every event goes to one or more files; each file is shuffled its own way and
    # ends with a bad line, so rejected rows are raced for too.
    files: list[list[bytes]] = [[] for _ in range(LOADERS - 1)]
    for line in demo_lines:
        chosen = [f for f in files if rng.random() < 0.5] or [rng.choice(files)]
        for f in chosen:
            f.append(line)
    paths = []
    for i, lines in enumerate(files):
        rng.shuffle(lines)
        paths.append(write_lines(tmp_path / f"part-{i}.ndjson", [*lines, b"{not json"]))
    paths.append(paths[0])  # the same file twice at once: same messageIds, same rejected ids

    wh = new_warehouse(pg, tmp_path / "wh")
    wh.cli("init")
    slow_down_the_ledger(pg, wh)
    procs = [start_loader(wh, path, batch_size=150) for path in paths]
    reports = [finish(p, f"loader {i}") for i, p in enumerate(procs)]

    for path, report in zip(paths, reports, strict=True):
        assert report["received"] == path.read_bytes().count(b"\n")
        assert report["received"] == report["accepted"] + report["rejected"] + report["duplicates"]
        assert report["rejected"] == 1
    # Each event accepted by exactly one process, stored exactly once.
    assert sum(r["accepted"] for r in reports) == len(demo_lines)
    message_ids = [orjson.loads(line)["messageId"] for line in demo_lines]
    stored = [r["message_id"] for r in wh.query(f"select message_id from {_raw(wh, 'events')}")]
    assert sorted(stored) == sorted(message_ids)
    # One rejected row per distinct (file, line): the file loaded twice counts once.
    assert wh.count("rejected") == LOADERS - 1

    # The typed tables hold what one sequential load of all events gives.
    reference = new_warehouse(pg, tmp_path / "ref")
    load_files([write_lines(tmp_path / "all.ndjson", demo_lines)], settings=reference.settings)
    for table in EVENT_TABLES:
        expected = raw_rows(reference, table.name)
        assert expected, f"no {table.name} rows in the demo data: the comparison would be empty"
        assert raw_rows(wh, table.name) == expected, f"{table.name} differs"


def _raw(wh: Warehouse, table: str) -> str:
    return f'"{wh.settings.raw_schema}"."{table}"'


# -- a build while loading ---------------------------------------------------
def _dbt(wh: Warehouse, target_path: Path, *args: str) -> list[str]:
    """A dbt command line; unit tests left out: they do not read the loaded data (the
    model tests and test_parity run them)."""
    return [
        str(BIN / "dbt"), *args, "--exclude", "test_type:unit",
        "--profiles-dir", str(ROOT), "--project-dir", str(ROOT),
        "--target-path", str(target_path), "--log-path", str(target_path),
        "--vars", orjson.dumps(VARS).decode(),
    ]  # fmt: skip


def _marts(target_path: Path) -> dict[str, tuple[str, str]]:
    manifest = json.loads((target_path / "manifest.json").read_text())
    return {
        n["name"]: (n["schema"], n["alias"] or n["name"])
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/")
    }


def _snapshot(wh: Warehouse, marts: dict[str, tuple[str, str]]) -> dict[str, list[Any]]:
    def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple((v is None, Decimal(v) if isinstance(v, int) else str(v)) for v in row)

    out = {}
    for name, (schema, alias) in sorted(marts.items()):
        rows = [tuple(r.values()) for r in wh.query(f'select * from "{schema}"."{alias}"')]
        out[name] = sorted(rows, key=key)
    return out


@pytest.fixture
def loads_during_a_build(
    pg: Any, tmp_path: Path, demo_lines: list[bytes]
) -> Iterator[tuple[Warehouse, Path, dict[str, Any]]]:
    """Load overlapping time slices with four processes; `dbt build` runs in between."""
    n = len(demo_lines)
    bounds = [0, n // 4, n // 2, 3 * n // 4, n]
    # Neighbouring slices overlap by 5%, like exports whose windows overlap at the edges.
    slices = [
        demo_lines[max(0, bounds[i] - n // 20) : min(n, bounds[i + 1] + n // 20)] for i in range(4)
    ]
    paths = [write_lines(tmp_path / f"slice-{i}.ndjson", s) for i, s in enumerate(slices)]
    wh = new_warehouse(pg, tmp_path / "wh")
    wh.cli("init")
    target_path = tmp_path / "dbt"
    # Wave 1: the oldest and the third slice, in small batches (slow, many commits).
    wave1 = [start_loader(wh, paths[i], batch_size=100) for i in (0, 2)]
    deadline = time.monotonic() + 120
    while wh.count("events") == 0:
        assert time.monotonic() < deadline, "the loaders committed nothing in 120s"
        time.sleep(0.05)
    build = subprocess.Popen(
        _dbt(wh, target_path, "build"),
        cwd=ROOT,
        env=_env(wh),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Wave 2: the second and newest slices start while the build is running.
    time.sleep(1.0)
    build_was_running = build.poll() is None
    wave2 = [start_loader(wh, paths[i], batch_size=100) for i in (1, 3)]
    reports = [finish(p, "loader") for p in (*wave1, *wave2)]
    loads_done_during_build = build.poll() is None
    out, _ = build.communicate(timeout=900)
    info = {
        "build_was_running": build_was_running,
        "loads_done_during_build": loads_done_during_build,
        "first_build_rc": build.returncode,
        "first_build_output": out,
        "reports": reports,
    }
    yield wh, target_path, info


def test_a_build_during_loads_loses_nothing(
    loads_during_a_build: tuple[Warehouse, Path, dict[str, Any]], demo_lines: list[bytes]
) -> None:
    wh, target_path, info = loads_during_a_build
    assert info["build_was_running"], "the build ended before the second wave of loads began"
    assert info["first_build_rc"] == 0, info["first_build_output"][-4000:]
    assert sum(r["accepted"] for r in info["reports"]) == len(demo_lines)
    assert wh.count("events") == len(demo_lines)

    # The next build (incremental models continue from the first) sees every event...
    wh.run(*_dbt(wh, target_path, "build"))
    marts = _marts(target_path)
    assert marts, "no models under models/marts: nothing to check"
    after_next_build = _snapshot(wh, marts)
    # ...so its marts equal those rebuilt from scratch.
    wh.run(*_dbt(wh, target_path, "build", "--full-refresh"))
    rebuilt = _snapshot(wh, marts)
    for name in marts:
        assert rebuilt[name], f"{name} is empty: the demo data should fill it"
        missing = sorted(set(rebuilt[name]) - set(after_next_build[name]), key=str)[:5]
        extra = sorted(set(after_next_build[name]) - set(rebuilt[name]), key=str)[:5]
        assert after_next_build[name] == rebuilt[name], (
            f"{name}: after a build during loads and one more build, {len(after_next_build[name])}"
            f" rows; a full refresh gives {len(rebuilt[name])}.\n"
            f"missing e.g. {missing!r}\nunexpected e.g. {extra!r}"
        )
