"""Ingestion under faults, with real processes: SIGKILL and SIGTERM of an app in the
middle of a stream of calls, a normal exit, a DuckDB file held by another process
while the app keeps calling, and reads while a writer holds the warehouse."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from trackhouse import engine
from trackhouse.cli import EXIT_FAILURE
from trackhouse.engine import ensure_schema
from trackhouse.errors import WarehouseBusyError, WarehouseMissingError
from trackhouse.query import fetch
from trackhouse.settings import load_settings
from trackhouse.spool import drain

ROOT = Path(__file__).resolve().parents[1]

# An application: records a stream of calls and prints each id once its call returned.
APP = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from trackhouse import Tracker, get_tracker
    at = datetime(2024, 3, 1, 10, tzinfo=UTC)
    if sys.argv[2] == "default":  # the module-level API's tracker
        tracker = get_tracker()
    else:
        tracker = Tracker(flush_interval=0.05, drain_interval=0.1)
    print("ready", flush=True)
    for i in range(int(sys.argv[1])):
        if i % 5 == 0:
            out = tracker.record_conversion("signup", user_id=f"u{i}", at=at, message_id=f"c{i}")
            out = f"c{i}"
        else:
            out = tracker.record_touchpoint(f"a{i}", f"https://e.example/?utm_source=s{i}", at=at)
        print(out, flush=True)
    print("done", flush=True)
    time.sleep(600)  # wait to be killed
    """
)


def _default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The app as a plain script: SIGTERM at its default action. An ignored SIGTERM
    would be inherited from the test process, and a Dagster run earlier in the same
    worker leaves it ignored when the worker ignores SIGINT (Dagster points SIGTERM at
    SIGINT's handler, and a background `make test` ignores SIGINT)."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigterm,
    )


def _read_ids(proc: subprocess.Popen[str], stop_after: int, limit_s: float = 120) -> list[str]:
    """Ids printed by the app (each printed after its call returned), up to `stop_after`."""
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    ids: list[str] = []
    deadline = time.monotonic() + limit_s
    while len(ids) < stop_after and time.monotonic() < deadline:
        line = proc.stdout.readline().strip()
        if not line or line == "done":
            break
        ids.append(line)
    return ids


def _landed(warehouse, ids: list[str]) -> dict[str, int]:
    rows = fetch(
        f'select message_id, count(*) as n from "{warehouse.settings.raw_schema}".events '
        "group by message_id",
        settings=warehouse.settings,
    )
    return {r["message_id"]: int(r["n"]) for r in rows}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_an_app_killed_mid_stream_loses_nothing_it_returned(warehouse, sig):
    """SIGKILL (or SIGTERM, which the default tracker answers with an fsync) at an
    arbitrary moment, then a drain: every call that returned is in the warehouse
    exactly once. On PostgreSQL the app's own drain
    thread is running too, so the kill may also land in the middle of a drain."""
    ensure_schema(warehouse.settings)
    proc = _start(APP, "100000", "default" if sig == signal.SIGTERM else "own")
    try:
        ids = _read_ids(proc, stop_after=1500)
        proc.send_signal(sig)
        assert proc.stdout is not None
        # what it printed before dying: calls that returned too
        ids += [line for line in proc.stdout.read().split() if line != "done"]
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -sig  # died of the signal, as without trackhouse
    assert len(ids) >= 1000, "the app made too few calls to test anything"
    report = drain(warehouse.settings.spool_dir, warehouse.settings)
    assert report.balanced and report.rejected == 0
    landed = _landed(warehouse, ids)
    assert all(landed.get(i) == 1 for i in ids), "a call that returned was lost"
    # At most the one call in flight at the kill landed besides them.
    assert len(landed) - len(ids) in (0, 1)
    assert drain(warehouse.settings.spool_dir, warehouse.settings).received == 0


def test_normal_exit_drains_the_default_tracker(warehouse):
    """The module-level API at interpreter exit: the segment is sealed and drained
    (DuckDB: "close" mode; PostgreSQL: the thread's last drain) with no other step."""
    ensure_schema(warehouse.settings)
    script = textwrap.dedent(
        """
        import trackhouse
        from datetime import UTC, datetime
        at = datetime(2024, 3, 1, 10, tzinfo=UTC)
        for i in range(200):
            print(trackhouse.record_touchpoint(f"a{i}", "https://e.example/?gclid=1", at=at))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    assert len(ids) == 200
    assert set(_landed(warehouse, ids)) == set(ids)
    assert list(warehouse.settings.spool_dir.iterdir()) == []


LOCK_HOLDER = textwrap.dedent(
    """
    import os, sys, time, duckdb
    con = duckdb.connect(sys.argv[1])  # a writer: dbt build, a long load
    con.execute("begin transaction")
    print("locked", flush=True)
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline and not os.path.exists(sys.argv[3]):
        time.sleep(0.05)
    con.execute("commit")
    con.close()
    """
)

CALLER = textwrap.dedent(
    """
    import json, resource, sys, time
    from datetime import UTC, datetime
    from trackhouse import Tracker
    errors = []
    tracker = Tracker(
        drain="thread", flush_interval=0.1, drain_interval=0.2,
        on_error=lambda exc, what: errors.append(type(exc).__name__),
    )
    at = datetime(2024, 3, 1, 10, tzinfo=UTC)
    url = "https://e.example/landing?utm_source=news&utm_content=" + "x" * 900
    def rss_kb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
    ids, raised = [], 0
    for i in range(2000):  # warm up: first segment, caches
        ids.append(tracker.record_touchpoint(f"w{i}", url, at=at))
    tracker.flush(lock_timeout=0)  # and a first drain attempt (fails: locked)
    start_rss = rss_kb()
    print("ready", flush=True)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline and len(ids) < 40000:
        try:
            ids.append(tracker.record_touchpoint(f"a{len(ids)}", url, at=at))
        except Exception as exc:
            raised += 1
        time.sleep(0.0002)
    end_rss = rss_kb()
    spooled = tracker.spool.depth_bytes()
    open(sys.argv[2], "w").close()  # tell the lock holder to let go
    tracker.close()  # the warehouse is free again: the last drain lands the rest
    print(json.dumps({"ids": ids, "raised": raised, "drain_errors": errors,
                      "rss_growth_kb": end_rss - start_rss, "spooled_bytes": spooled}))
    """
)


def test_a_locked_duckdb_file_never_reaches_the_app(warehouse):
    """Another process holds the DuckDB file for writing for ~25 s while the app keeps
    calling with an in-app drain thread: no call raises, memory stays flat (the
    events wait on disk, not in the process), and everything lands afterwards."""
    if not warehouse.settings.is_duckdb:
        pytest.skip("PostgreSQL has no file lock; the unreachable case is the next test")
    ensure_schema(warehouse.settings)
    release = warehouse.tmp / "release"
    holder = _start(LOCK_HOLDER, str(warehouse.settings.duckdb_path), "90", str(release))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        app = subprocess.run(
            [sys.executable, "-c", CALLER, "20", str(release)],
            cwd=ROOT,
            env={**os.environ, "TRACKHOUSE_LOCK_TIMEOUT": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        holder.wait(timeout=60)
    assert app.returncode == 0, app.stderr[-3000:]
    result = orjson.loads(app.stdout.splitlines()[-1])
    ids = result["ids"]
    assert result["raised"] == 0
    assert result["drain_errors"], "the drain thread never met the lock: nothing was tested"
    assert "WarehouseBusyError" in app.stderr or "lock" in app.stderr  # the log line
    # Memory: the old in-memory buffer held every event (over 1 KB each) until the
    # warehouse came back; the spool holds them on disk.
    summary = {k: v for k, v in result.items() if k not in ("ids", "drain_errors")}
    summary["calls"] = len(result["ids"])
    print(f"locked for the whole run: {summary}")
    assert result["spooled_bytes"] > 8 * 2**20, summary
    assert result["rss_growth_kb"] * 1024 < result["spooled_bytes"] / 4, result
    landed = _landed(warehouse, ids)
    assert len(ids) > 5000 and all(landed.get(i) == 1 for i in ids)


def test_an_unreachable_postgres_never_reaches_the_app(warehouse, monkeypatch):
    if warehouse.settings.is_duckdb:
        pytest.skip("the DuckDB case is the locked-file test")
    from trackhouse import Tracker

    monkeypatch.setenv("TRACKHOUSE_PG_PORT", "1")  # nothing listens there
    down = load_settings("postgres", warehouse.settings.project_dir)
    errors: list[str] = []
    spool_dir = warehouse.tmp / "spool"
    tracker = Tracker(
        down,
        spool_dir=spool_dir,
        drain="thread",
        flush_interval=0.05,
        drain_interval=0.05,
        on_error=lambda exc, what: errors.append(what),
    )
    ids = [tracker.record_touchpoint(f"a{i}", "https://e.example/?gclid=1") for i in range(300)]
    deadline = time.monotonic() + 30
    while not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    tracker.close()  # still down: logged, nothing raised, events kept
    assert errors and all("the events stay in the spool" in e for e in errors)
    report = drain(spool_dir, warehouse.settings)  # the server is back (the right port)
    assert report.accepted == 300
    assert set(_landed(warehouse, ids)) == set(ids)


# -- reads never block writers, never create a warehouse --------------------------------
def test_a_read_waits_for_a_writer_mid_commit(warehouse, monkeypatch):
    if not warehouse.settings.is_duckdb:
        pytest.skip("PostgreSQL readers never wait (MVCC)")
    ensure_schema(warehouse.settings)
    holder = _start(LOCK_HOLDER, str(warehouse.settings.duckdb_path), "2", "-")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # A writer holds the file: the read retries until it is free, then reads.
        assert warehouse.count("events") == 0
    finally:
        holder.wait(timeout=60)
    holder = _start(LOCK_HOLDER, str(warehouse.settings.duckdb_path), "20", "-")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(engine, "READ_TIMEOUT_SECONDS", 0.5)
        with pytest.raises(WarehouseBusyError, match=str(warehouse.settings.duckdb_path)):
            warehouse.count("events")
    finally:
        holder.kill()
        holder.wait(timeout=60)


def test_forget_waits_for_a_writer_like_a_load(warehouse):
    """`forget` while dbt (another process) holds the DuckDB file: it waits for
    the file, as a load does, instead of failing at once with DuckDB's lock error."""
    if not warehouse.settings.is_duckdb:
        pytest.skip("PostgreSQL has no file lock")
    from trackhouse.loader import load_files
    from trackhouse.privacy import forget

    from factories import track

    settings = warehouse.settings
    gone = [track("2024-03-01T10:00:00Z", "click", user_id="gone", message_id="g1")]
    load_files([warehouse.write_ndjson(gone)], settings=settings)
    holder = _start(LOCK_HOLDER, str(settings.duckdb_path), "2", "-")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        report = forget(["gone"], settings=settings)
        assert holder.poll() is not None, "forget did not wait for the writer"
    finally:
        holder.wait(timeout=60)
    assert report.rows["events"] == 1
    assert warehouse.count("events") == 0


def test_reads_and_writes_from_threads_of_one_app_wait_for_each_other(warehouse):
    """An app with an in-app drain thread writing and a request thread querying: DuckDB
    admits one configuration per file in a process, so a read-only open while the
    drain has the file open to write failed at once with DuckDB's "different
    configuration" error, and so did a write while a read was open. Each waits for
    the other instead, as it waits for another process."""
    if not warehouse.settings.is_duckdb:
        pytest.skip("PostgreSQL readers and writers never wait for each other (MVCC)")
    import threading

    from trackhouse.engine import raw_connection, read_connection
    from trackhouse.loader import load_files

    from factories import track

    settings = warehouse.settings
    ensure_schema(settings)
    opened, release = threading.Event(), threading.Event()

    def hold(open_it) -> None:
        with open_it(settings):
            opened.set()
            release.wait(30)

    # a writer thread holds the file; the query waits for it, then answers
    writer = threading.Thread(target=hold, args=(raw_connection,))
    writer.start()
    assert opened.wait(30)
    threading.Timer(1.0, release.set).start()
    assert fetch("select count(*) as n from trackhouse_raw.events", settings=settings) == [{"n": 0}]
    assert release.is_set(), "the read did not wait for the writer thread"
    writer.join(30)

    # a reader thread has the file open read-only; the load waits for it, then lands
    opened.clear(), release.clear()
    reader = threading.Thread(target=hold, args=(read_connection,))
    reader.start()
    assert opened.wait(30)
    threading.Timer(1.0, release.set).start()
    events = [
        track("2024-03-01T10:00:00Z", "click", user_id=f"u{i}", message_id=f"m{i}")
        for i in range(3)
    ]
    report = load_files([warehouse.write_ndjson(events)], settings=settings)
    assert release.is_set(), "the load did not wait for the reader thread"
    reader.join(30)
    assert (report.received, report.accepted) == (3, 3)
    assert warehouse.count("events") == 3

    # the first write of a process to a raw schema creates it: that waits too
    fresh = dataclasses.replace(settings, raw_schema="fresh_raw")
    opened.clear(), release.clear()
    reader = threading.Thread(target=hold, args=(read_connection,))
    reader.start()
    assert opened.wait(30)
    threading.Timer(1.0, release.set).start()
    report = load_files([warehouse.write_ndjson(events)], settings=fresh)
    assert release.is_set(), "creating the schema did not wait for the reader thread"
    reader.join(30)
    assert (report.received, report.accepted) == (3, 3)
    assert warehouse.count("events", schema="fresh_raw") == 3


def test_a_query_during_dbt_build(warehouse, monkeypatch):
    """A read during a dbt run: PostgreSQL answers at once; DuckDB retries until
    the build has released the file. The build is not disturbed either way."""
    path = warehouse.write_ndjson(
        [
            {
                "type": "identify",
                "messageId": f"m{i}",
                "userId": f"u{i}",
                "timestamp": "2024-03-01T10:00:00Z",
            }
            for i in range(50)
        ]
    )
    warehouse.cli("load", str(path))
    env = {**os.environ, **warehouse.env}
    cmd = [
        str(Path(sys.executable).parent / "dbt"),
        "run",
        "--select",
        "staging",
        "--profiles-dir",
        str(ROOT),
        "--project-dir",
        str(ROOT),
        "--target-path",
        str(warehouse.tmp / "dbt-target"),
        "--log-path",
        str(warehouse.tmp / "dbt-target"),
    ]
    build = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert build.stdout is not None
        for line in build.stdout:  # wait until dbt is running models (it holds the file)
            if " START " in line:
                break
        monkeypatch.setattr(engine, "READ_TIMEOUT_SECONDS", 300)
        assert warehouse.count("events") == 50
        rest = build.stdout.read()
    finally:
        code = build.wait(timeout=600)
    assert code == 0, rest[-3000:]


def test_a_mistyped_duckdb_path_is_a_clear_error_and_creates_nothing(
    warehouse, tmp_path, monkeypatch
):
    if not warehouse.settings.is_duckdb:
        pytest.skip("DuckDB paths only")
    typo = tmp_path / "wharehouse.duckdb"
    monkeypatch.setenv("TRACKHOUSE_DUCKDB_PATH", str(typo))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "trackhouse"), "summary"],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_FAILURE  # the warehouse said no; not a usage error
    assert str(typo) in done.stderr and "make demo" in done.stderr
    with pytest.raises(WarehouseMissingError, match="trackhouse load"):
        fetch("select 1", settings=load_settings("duckdb", ROOT))
    assert list(tmp_path.iterdir()) == [], "a read created something"


def test_relative_duckdb_paths_resolve_against_the_project_dir(monkeypatch, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "profiles.yml").write_text((ROOT / "profiles.yml").read_text())
    monkeypatch.setenv("TRACKHOUSE_DUCKDB_PATH", "data/wh.duckdb")
    monkeypatch.setenv("TRACKHOUSE_PROJECT_DIR", str(project))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.delenv("TRACKHOUSE_SPOOL_DIR", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings("duckdb")
    assert settings.duckdb_path == project / "data" / "wh.duckdb"
    assert settings.dbt_env()["TRACKHOUSE_DUCKDB_PATH"] == str(project / "data" / "wh.duckdb")
    assert settings.spool_dir == project / "data" / "wh.duckdb.spool"
