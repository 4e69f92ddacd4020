"""`trackhouse load`: every line accounted for, bad input rejected with reasons, idempotent."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import signal
import subprocess
import threading
import time

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from trackhouse import loader
from trackhouse.engine import get_engine
from trackhouse.loader import load_files

from factories import identify, page, track

GOOD = [
    page(
        "2024-05-01T10:00:00Z",
        "https://shop.example/?utm_source=google&utm_campaign=spring",
        anonymous_id="anon-1",
        message_id="p1",
    ),
    identify(
        "2024-05-01T10:05:00+02:00",
        "user-1",
        anonymous_id="anon-1",
        message_id="i1",
        created_at="2024-05-01T08:05:00Z",
    ),
    track(
        "2024-05-01T10:06:00Z",
        "purchase",
        user_id="user-1",
        message_id="t1",
        value=19.99,
        currency="usd",
        plan="pro",
    ),
]


def test_good_events_land_in_their_raw_tables(warehouse):
    report = load_files([warehouse.write_ndjson(GOOD)], settings=warehouse.settings)
    assert (report.received, report.accepted, report.rejected, report.duplicates) == (3, 3, 0, 0)
    assert warehouse.count("events") == 3
    assert [r["event_id"] for r in warehouse.raw("touchpoints")] == ["p1"]
    # identify (with userId) and track (with userId) are activity; the anonymous page is not.
    assert sorted(r["event_id"] for r in warehouse.raw("activity")) == ["i1", "t1"]
    (conv,) = warehouse.raw("conversion_events")
    assert conv["currency"] == "USD" and str(conv["value"]).startswith("19.99")
    assert orjson.loads(conv["custom_data"]) == {"plan": "pro"}
    (link,) = warehouse.raw("identity_links")
    assert (link["anonymous_id"], link["user_id"]) == ("anon-1", "user-1")
    # The offset +02:00 is converted to UTC.
    assert str(link["occurred_at"]) == "2024-05-01 08:05:00"


BAD_LINES = {
    b'{"type": "page", "messageId": ': "malformed JSON",
    orjson.dumps({"type": "page", "messageId": "b1", "anonymousId": "a"}): "timestamp must be",
    orjson.dumps(
        {"type": "page", "messageId": "b2", "anonymousId": "a", "timestamp": "2024-05-01T10:00:00"}
    ): "has no UTC offset",
    orjson.dumps(
        {
            "type": "video",
            "messageId": "b3",
            "anonymousId": "a",
            "timestamp": "2024-05-01T10:00:00Z",
        }
    ): "type 'video' is not one of",
    orjson.dumps(
        {
            "type": "track",
            "messageId": "b4",
            "userId": "u",
            "event": "buy",
            "timestamp": "2024-05-01T10:00:00Z",
            "properties": {"value": "lots"},
        }
    ): "properties.value must be a number",
    orjson.dumps(
        {"type": "page", "messageId": 12, "anonymousId": "a", "timestamp": "2024-05-01T10:00:00Z"}
    ): "messageId must be a non-empty string",
    orjson.dumps(
        {
            "type": "identify",
            "messageId": "b5",
            "userId": {"id": 1},
            "timestamp": "2024-05-01T10:00:00Z",
        }
    ): "userId must be a string",
    b'{"type": "page", "messageId": "b6", "anonymousId": "caf\xe9", '
    b'"timestamp": "2024-05-01T10:00:00Z"}': "not valid UTF-8",
    b"[1, 2, 3]": "must be a JSON object",
}


def test_each_kind_of_bad_line_is_rejected_with_an_actionable_reason(warehouse):
    lines = [*BAD_LINES, *(orjson.dumps(e) for e in GOOD)]
    path = warehouse.write_ndjson(lines)
    report = load_files([path], settings=warehouse.settings)
    assert report.received == len(lines)
    assert report.accepted == len(GOOD) and report.rejected == len(BAD_LINES)
    assert report.received == report.accepted + report.rejected + report.duplicates
    rejected = warehouse.raw("rejected")
    assert len(rejected) == len(BAD_LINES)
    by_line = {r["line_number"]: r for r in rejected}
    for number, (line, expected) in enumerate(BAD_LINES.items(), start=1):
        row = by_line[number]
        assert expected in row["reason"], (line, row["reason"])
        assert row["source"] == str(path)
        # The original payload is kept (invalid bytes shown as escapes).
        assert row["payload"] == line.decode("utf-8", "backslashreplace")


def test_a_line_of_several_megabytes_is_rejected_and_kept(warehouse):
    huge = track("2024-05-01T10:00:00Z", "purchase", user_id="u", blob="x" * 3_000_000)
    report = load_files([warehouse.write_ndjson([huge, *GOOD])], settings=warehouse.settings)
    assert (report.accepted, report.rejected) == (3, 1)
    (row,) = warehouse.raw("rejected")
    assert "bytes; events over" in row["reason"]
    assert len(row["payload"]) > 3_000_000


def test_payloads_are_kept_as_sent_and_stored_with_zstd_on_duckdb(warehouse):
    """The ledger keeps each line's payload byte for byte; on DuckDB the payload
    columns are declared `USING COMPRESSION zstd` (schema.py), which a checkpoint
    applies to them, and no other column."""
    lines = [orjson.dumps(e) for e in GOOD] + [b'{"type": "page", "messageId": "broken", ']
    load_files([warehouse.write_ndjson(lines)], settings=warehouse.settings)
    stored = {r["message_id"]: r["payload"] for r in warehouse.raw("events")}
    assert stored == {e["messageId"]: orjson.dumps(e).decode() for e in GOOD}
    assert [r["payload"] for r in warehouse.raw("rejected")] == [lines[-1].decode()]
    if warehouse.target != "duckdb":
        return
    schema = warehouse.settings.raw_schema
    with get_engine(warehouse.settings).begin() as conn:
        conn.execute(sa.text("checkpoint"))
        used = [
            (table, *row)
            for table in ("events", "rejected")
            for row in conn.execute(
                sa.text(
                    "select column_name, string_agg(distinct compression, ',') "
                    f"from pragma_storage_info('{schema}.{table}') "
                    "where segment_type <> 'VALIDITY' group by all"
                )
            )
        ]
    zstd = {(table, column) for table, column, methods in used if "ZSTD" in methods.upper()}
    assert zstd == {("events", "payload"), ("rejected", "payload")}, used


def test_a_load_leaves_the_databases_threads_setting_as_it_was(warehouse):
    """The writer runs each batch on one DuckDB thread (writer._write_duckdb). The
    setting belongs to the database, which every connection of this process to the
    file shares (the query API's, a drain's): after the load it is what it was."""
    if warehouse.target != "duckdb":
        pytest.skip("a DuckDB setting")
    with get_engine(warehouse.settings).connect() as conn:
        conn.execute(sa.text("set threads = 3"))
        lines = [orjson.dumps(e) for e in GOOD]
        load_files([warehouse.write_ndjson(lines)], settings=warehouse.settings)
        assert conn.execute(sa.text("select current_setting('threads')")).scalar() == 3
        assert conn.execute(
            sa.text(f"select count(*) from {warehouse.settings.raw_schema}.events")
        ).scalar() == len(GOOD)


def test_a_write_that_waits_for_the_callers_own_connection_says_so(warehouse):
    """DuckDB admits one configuration of a file per process: a `duckdb.connect(path)`
    of the caller's own makes trackhouse's writer wait as for a lock, and the error
    must point at that connection, not only at other processes."""
    if warehouse.target != "duckdb":
        pytest.skip("a DuckDB file")
    import duckdb

    from trackhouse.engine import lock_timeout
    from trackhouse.errors import WarehouseBusyError
    from trackhouse.writer import write_batch

    report = loader.LoadReport()
    lines = loader.Lines.of([(1, orjson.dumps(GOOD[0]))])
    batch = loader.parse_chunk(
        lines,
        source="t",
        received_at=dt.datetime(2024, 5, 2),
        allowed_events=None,
        report=report,
        fast=None,
    )
    assert len(batch)
    own = duckdb.connect(str(warehouse.settings.duckdb_path))
    try:
        with lock_timeout(0.3), pytest.raises(WarehouseBusyError, match=r"duckdb\.connect\(path\)"):
            write_batch(warehouse.settings, batch)
    finally:
        own.close()
    assert write_batch(warehouse.settings, batch).new_events == 1  # once it is closed


def test_sql_in_values_is_stored_literally(warehouse):
    nasty = "x'); drop table trackhouse_raw.events; --"
    event = page(
        "2024-05-01T10:00:00Z",
        f"https://e.example/?utm_source={nasty}",
        anonymous_id=nasty,
        message_id=nasty,
    )
    load_files([warehouse.write_ndjson([event])], settings=warehouse.settings)
    (row,) = warehouse.raw("touchpoints")
    assert row["anonymous_id"] == nasty and row["event_id"] == nasty
    assert warehouse.count("events") == 1


def test_loading_the_same_file_twice_changes_nothing(warehouse):
    path = warehouse.write_ndjson([*BAD_LINES, *(orjson.dumps(e) for e in GOOD)])
    first = load_files([path], settings=warehouse.settings)
    snapshot = {t: warehouse.raw(t) for t in ("events", "activity", "touchpoints", "rejected")}
    second = load_files([path], settings=warehouse.settings)
    assert second.received == first.received
    assert second.accepted == 0 and second.duplicates == len(GOOD)
    assert second.received == second.accepted + second.rejected + second.duplicates
    assert {t: warehouse.raw(t) for t in snapshot} == snapshot


def test_threads_of_one_process_loading_at_once_lose_nothing(warehouse):
    """An app loads from several threads into one warehouse, each load writing a
    batch per event (a connection opened and closed each time). On DuckDB the
    threads share the file's database instance, which closes with its last
    connection; a thread that opened the file while another's close was still
    under way failed with "Unique file handle conflict" (a CI run met it).
    Every load must land every event and raise nothing."""
    from concurrent.futures import ThreadPoolExecutor

    threads, per_thread = 3, 40

    def one_load(n: int) -> loader.LoadReport:
        events = [
            track(
                f"2024-05-01T10:{i % 60:02d}:00Z", "click", user_id=f"t{n}", message_id=f"t{n}-{i}"
            )
            for i in range(per_thread)
        ]
        report = loader.LoadReport()
        stream = io.BytesIO(b"".join(orjson.dumps(e) + b"\n" for e in events))
        loader.load_stream(
            stream, f"thread-{n}", settings=warehouse.settings, report=report, batch_size=1
        )
        return report

    done = threading.Event()

    def count_while_loading() -> int:
        # another thread of the app reads through the engine meanwhile
        reads = 0
        while not done.is_set() and reads < 500:
            with get_engine(warehouse.settings).connect() as conn:
                conn.execute(sa.text("select 1")).scalar()
            reads += 1
        return reads

    with ThreadPoolExecutor(max_workers=threads + 1) as pool:
        reader = pool.submit(count_while_loading)
        reports = list(pool.map(one_load, range(threads)))
        done.set()
        assert reader.result() > 0
    assert [(r.received, r.accepted, r.rejected) for r in reports] == [
        (per_thread, per_thread, 0)
    ] * threads
    assert warehouse.count("events") == threads * per_thread


def test_forgetting_a_user_while_another_thread_loads(warehouse):
    """A request thread forgets a user while the app's loader thread writes batch
    after batch: both finish, the load lands every event and the user is gone."""
    from concurrent.futures import ThreadPoolExecutor

    from trackhouse.privacy import forget

    gone = [
        track("2024-05-01T09:00:00Z", "click", user_id="gone", message_id=f"g{i}") for i in range(3)
    ]
    load_files([warehouse.write_ndjson(gone)], settings=warehouse.settings)
    kept = [
        track(f"2024-05-01T10:{i:02d}:00Z", "click", user_id="kept", message_id=f"k{i}")
        for i in range(40)
    ]

    def load() -> loader.LoadReport:
        report = loader.LoadReport()
        stream = io.BytesIO(b"".join(orjson.dumps(e) + b"\n" for e in kept))
        loader.load_stream(
            stream, "kept.ndjson", settings=warehouse.settings, report=report, batch_size=1
        )
        return report

    with ThreadPoolExecutor(max_workers=1) as pool:
        loading = pool.submit(load)
        forgotten = [forget(["gone"], settings=warehouse.settings) for _ in range(3)]
        report = loading.result()
    assert (report.received, report.accepted) == (40, 40)
    assert sum(f.rows.get("events", 0) for f in forgotten) == 3
    ids = {r["message_id"] for r in warehouse.raw("events")}
    assert ids == {f"k{i}" for i in range(40)}


def test_duplicate_message_ids_within_a_file_count_once(warehouse):
    report = load_files(
        [warehouse.write_ndjson([*GOOD, GOOD[0], GOOD[2]])], settings=warehouse.settings
    )
    assert (report.received, report.accepted, report.duplicates) == (5, 3, 2)


def test_allowed_events_reject_other_conversion_names(warehouse):
    events = [*GOOD, track("2024-05-01T11:00:00Z", "purchse", user_id="user-1")]
    report = load_files(
        [warehouse.write_ndjson(events)],
        settings=warehouse.settings,
        allowed_events={"purchase", "signup"},
    )
    assert (report.accepted, report.rejected) == (3, 1)
    assert (
        "'purchse' is not allowed; allowed events: purchase, signup" in report.rejections[0].reason
    )


def test_gzip_and_stdin(warehouse):
    import gzip

    path = warehouse.tmp / "events.ndjson.gz"
    path.write_bytes(gzip.compress(b"\n".join(orjson.dumps(e) for e in GOOD)))
    proc = warehouse.cli("load", str(path))
    assert "received 3 = accepted 3 + rejected 0 + duplicates skipped 0" in proc.stdout
    extra = track("2024-05-02T10:00:00Z", "signup", user_id="user-2")
    proc = subprocess.run(
        [str(warehouse_bin()), "load", "-", "--format", "json"],
        input=orjson.dumps(extra),
        capture_output=True,
        env={**os.environ, **warehouse.env},
        cwd=warehouse.tmp,
    )
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)[0]["accepted"] == 1
    assert warehouse.count("events") == 4


def warehouse_bin():
    from conftest import BIN

    return BIN / "trackhouse"


def _many(n: int) -> list[dict]:
    return [
        page(
            f"2024-05-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            f"https://e.example/p{i}?utm_source=s{i % 7}",
            anonymous_id=f"a{i % 500}",
            user_id=f"u{i % 300}" if i % 2 else None,
            message_id=f"m{i}",
        )
        for i in range(n)
    ]


def test_sigkill_mid_file_then_rerun_equals_one_clean_load(warehouse, tmp_path):
    events = _many(200_000)
    path = warehouse.write_ndjson(events)
    cmd = [str(warehouse_bin()), "load", str(path), "--batch-size", "2000"]
    env = {**os.environ, **warehouse.env}
    proc = subprocess.Popen(
        [*cmd, "--progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # The progress line is printed after a batch has been committed: kill the
    # loader as soon as it reports one, long before the file is done.
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.read1(4096)
        if re.search(rb"[1-9][\d,]* lines", seen):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = warehouse.count("events")
    assert 0 < partial < len(events), "the loader was not killed mid-file"
    assert partial % 2000 == 0, "a killed loader left a partial batch"
    rerun = subprocess.run(
        [*cmd, "--no-progress", "--format", "json"], env=env, capture_output=True, check=True
    )
    summary = orjson.loads(rerun.stdout)[0]
    assert summary["received"] == len(events)
    assert summary["accepted"] + summary["duplicates"] == len(events)
    assert summary["duplicates"] == partial
    assert warehouse.count("events") == len(events)
    assert warehouse.count("touchpoints") == len(events)
    assert warehouse.count("activity") == len(events) // 2


@pytest.mark.parametrize("bad", ["2024-13-01T00:00:00Z", 1714557600, "yesterday"])
def test_unparseable_timestamps(warehouse, bad):
    event = page("x", "https://e.example/", anonymous_id="a")
    event["timestamp"] = bad
    report = load_files([warehouse.write_ndjson([event])], settings=warehouse.settings)
    assert report.rejected == 1 and "timestamp" in report.rejections[0].reason


def test_progress_line_and_summary_on_the_command_line(warehouse):
    path = warehouse.write_ndjson(_many(3000))
    proc = warehouse.cli("load", str(path), "--progress", "--batch-size", "1000")
    assert "events.ndjson: 100.0% 3,000 lines" in proc.stderr
    assert "received 3,000 = accepted 3,000 + rejected 0 + duplicates skipped 0" in proc.stdout


@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    final_break=st.booleans(),
    size=st.integers(1, 9),
    max_bytes=st.integers(1, 200),
    read_bytes=st.integers(1, 64),
)
@settings(max_examples=300, deadline=None)
def test_chunks_give_every_line_once_in_order(
    lines: list[bytes],
    final_break: bool,
    size: int,
    max_bytes: int,
    read_bytes: int,
) -> None:
    """However the file is read (blocks of any size) and cut (any chunk size), the
    chunks give back its lines with their 1-based numbers, none longer than asked."""
    data = b"\n".join(lines) + (b"\n" if final_break and lines else b"")
    got: list[tuple[int, bytes]] = []
    default, loader.READ_BYTES = loader.READ_BYTES, read_bytes
    try:
        for chunk in loader._chunks(io.BytesIO(data), size, max_bytes):
            assert 1 <= len(chunk) <= size
            got += [(chunk.numbers[i], chunk.line(i)) for i in range(len(chunk))]
    finally:
        loader.READ_BYTES = default
    expected = data.split(b"\n")[: -1 if data.endswith(b"\n") else None] if data else []
    # (a line keeps no line break: a CR before the LF, or at the very end, is dropped)
    assert got == [(n, line.rstrip(b"\r")) for n, line in enumerate(expected, start=1)]
