"""The durable spool: append-only segments, sealing, crash recovery, fork safety, the
full policy, and the drain into the warehouse (idempotent, segment deleted after commit)."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from pathlib import Path

import orjson
import pytest

from trackhouse.spool import (
    OPEN,
    REJECTS,
    SEALED,
    Spool,
    SpoolFullError,
    drain,
    recover,
    status,
)


def _page(i: int, **extra: object) -> dict[str, object]:
    return {
        "type": "page",
        "messageId": f"m-{i}",
        "anonymousId": f"anon-{i}",
        "timestamp": "2024-03-01T10:00:00Z",
        "context": {"page": {"url": f"https://e.example/?utm_source=s{i % 3}"}},
        **extra,
    }


def _files(directory: Path, suffix: str) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(suffix))


def _lines(paths: list[Path]) -> list[dict[str, object]]:
    return [orjson.loads(line) for p in paths for line in p.read_bytes().splitlines()]


def test_append_writes_whole_lines_to_one_open_segment(tmp_path):
    spool = Spool(tmp_path, source="api")
    spool.append([_page(1), _page(2)])
    spool.append([orjson.dumps(_page(3)) + b"\n"])  # pre-encoded lines too
    (segment,) = _files(tmp_path, OPEN)
    assert segment.name.startswith("api-") and f"-{os.getpid()}-" in segment.name
    assert [m["messageId"] for m in _lines([segment])] == ["m-1", "m-2", "m-3"]
    assert spool.depth_bytes() == segment.stat().st_size
    spool.close()
    assert _files(tmp_path, OPEN) == []
    (sealed,) = _files(tmp_path, SEALED)
    assert len(_lines([sealed])) == 3


def test_segments_rotate_by_size_and_age(tmp_path):
    spool = Spool(tmp_path, segment_bytes=1000, seal_after=3600)
    for i in range(30):
        spool.append([_page(i)])
    sealed = _files(tmp_path, SEALED)
    assert len(sealed) >= 3
    assert all(p.stat().st_size <= 1000 for p in sealed)
    assert spool.seal_if_older(0)  # what the Tracker's thread does every few seconds
    ids = [m["messageId"] for m in _lines(_files(tmp_path, SEALED))]
    assert ids == [f"m-{i}" for i in range(30)]  # names sort in write order


def test_a_line_with_a_newline_inside_is_refused(tmp_path):
    with pytest.raises(ValueError, match="one line of JSON"):
        Spool(tmp_path).append([b'{"a":\n1}'])
    assert Spool(tmp_path).depth_bytes() == 0


def test_threads_append_concurrently_without_mixing_lines(tmp_path):
    spool = Spool(tmp_path, segment_bytes=50_000)

    def work(k: int) -> None:
        for i in range(300):
            spool.append([_page(k * 1000 + i, filler="x" * (i % 50))])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spool.close()
    ids = [m["messageId"] for m in _lines(_files(tmp_path, SEALED))]
    assert sorted(ids) == sorted(f"m-{k * 1000 + i}" for k in range(4) for i in range(300))


def test_full_spool_refuses_and_keeps_nothing(tmp_path):
    spool = Spool(tmp_path, max_bytes=2_000)
    written = 0
    with pytest.raises(SpoolFullError, match="NOT recorded") as caught:
        for i in range(100):
            spool.append([_page(i)])
            written += 1
    assert caught.value.retry_after > 0
    assert str(tmp_path) in str(caught.value)
    assert 0 < written < 100
    assert spool.depth_bytes() <= 2_000
    assert len(_lines(_files(tmp_path, OPEN))) == written  # nothing half-written


def test_a_live_writer_is_left_alone_by_recovery(tmp_path):
    spool = Spool(tmp_path)
    spool.append([_page(1)])
    assert recover(tmp_path) == []  # its lock is held: not an orphan
    assert len(_files(tmp_path, OPEN)) == 1


def _orphan(tmp_path: Path, content: bytes) -> Path:
    """An open segment as a killed process leaves it (nobody holds its lock)."""
    path = tmp_path / f"api-{0:016d}-999999-000001{OPEN}"
    path.write_bytes(content)
    return path


def test_recovery_seals_a_dead_writers_segment(tmp_path):
    _orphan(tmp_path, orjson.dumps(_page(1)) + b"\n" + orjson.dumps(_page(2)) + b"\n")
    (sealed,) = recover(tmp_path)
    assert sealed.name.endswith(SEALED) and _files(tmp_path, OPEN) == []
    assert [m["messageId"] for m in _lines([sealed])] == ["m-1", "m-2"]


def test_recovery_completes_a_last_line_missing_only_its_newline(tmp_path):
    _orphan(tmp_path, orjson.dumps(_page(1)) + b"\n" + orjson.dumps(_page(2)))
    (sealed,) = recover(tmp_path)
    assert [m["messageId"] for m in _lines([sealed])] == ["m-1", "m-2"]
    assert _files(tmp_path, REJECTS) == []


def test_recovery_rejects_a_torn_last_line_with_its_reason(tmp_path):
    torn = orjson.dumps(_page(2))[:40]
    _orphan(tmp_path, orjson.dumps(_page(1)) + b"\n" + torn)
    (sealed,) = recover(tmp_path)
    assert [m["messageId"] for m in _lines([sealed])] == ["m-1"]
    (reject,) = _lines(_files(tmp_path, REJECTS))
    assert reject["payload"] == torn.decode()
    assert "incomplete last line" in reject["reason"] and "pid 999999" in reject["reason"]


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_writes_its_own_segment(tmp_path):
    spool = Spool(tmp_path)
    spool.append([_page(1)])
    pid = os.fork()
    if pid == 0:  # the child: a gunicorn worker forked after the app spooled
        try:
            spool.append([_page(2)])
            spool.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    spool.append([_page(3)])
    (mine,) = _files(tmp_path, OPEN)  # still open and locked by this process
    assert [m["messageId"] for m in _lines([mine])] == ["m-1", "m-3"]
    (childs,) = _files(tmp_path, SEALED)
    assert f"-{pid}-" in childs.name
    assert [m["messageId"] for m in _lines([childs])] == ["m-2"]
    assert recover(tmp_path) == []  # the child did not take the parent's lock away


# -- the drain, into the warehouse ---------------------------------------------------
def test_drain_loads_every_segment_once_and_deletes_it(warehouse, tmp_path):
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir, source="collector", segment_bytes=2_000)
    spool.append([_page(i) for i in range(5)])
    spool.append([_page(i) for i in range(5, 40)])
    spool.append([_page(3), {"type": "page", "messageId": "bad"}])  # a duplicate, a bad line
    spool.close()
    report = drain(spool_dir, warehouse.settings)
    assert (report.received, report.accepted, report.duplicates, report.rejected) == (42, 40, 1, 1)
    assert report.balanced
    assert list(spool_dir.iterdir()) == []
    assert warehouse.count("events") == 40
    (rejected,) = warehouse.raw("rejected")
    assert rejected["source"] == "collector" and rejected["line_number"] is not None
    assert "timestamp" in rejected["reason"]
    # Draining again finds nothing; re-appending the same messages lands nothing new.
    assert drain(spool_dir, warehouse.settings).received == 0
    spool.append([_page(i) for i in range(40)])
    spool.close()
    again = drain(spool_dir, warehouse.settings)
    assert (again.accepted, again.duplicates) == (0, 40)
    assert warehouse.count("events") == 40


def test_drain_keeps_a_segment_when_the_write_fails(warehouse, tmp_path, monkeypatch):
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    spool.append([_page(1)])
    spool.close()
    broken = warehouse.settings
    if broken.is_duckdb:  # a path that cannot be created: the write fails
        monkeypatch.setenv("TRACKHOUSE_DUCKDB_PATH", "/proc/no-such-dir/x.duckdb")
        from trackhouse.settings import load_settings

        broken = load_settings("duckdb", warehouse.settings.project_dir)
    else:
        from dataclasses import replace

        broken = replace(broken, output={**broken.output, "port": 1})
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        drain(spool_dir, broken)
    assert len(_files(spool_dir, SEALED)) == 1  # kept for the next drain
    assert drain(spool_dir, warehouse.settings).accepted == 1
    assert list(spool_dir.iterdir()) == []


def test_drain_records_refused_calls_and_torn_lines(warehouse, tmp_path):
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    spool.append_rejected('{"type": "page"}', "a reason that names the fix")
    _orphan(spool_dir, orjson.dumps(_page(1)) + b"\n" + b'{"type": "pa')
    report = drain(spool_dir, warehouse.settings)
    assert (report.received, report.accepted, report.rejected) == (3, 1, 2)
    reasons = sorted(r["reason"] for r in warehouse.raw("rejected"))
    assert reasons[0] == "a reason that names the fix"
    assert reasons[1].startswith("incomplete last line")
    assert list(spool_dir.iterdir()) == []


def test_drain_of_a_missing_directory_names_it(warehouse, tmp_path):
    from trackhouse.errors import TrackhouseError

    with pytest.raises(TrackhouseError, match=str(tmp_path / "nope")):
        drain(tmp_path / "nope", warehouse.settings)
    assert not (tmp_path / "nope").exists()


def test_unique_names_across_instances(tmp_path):
    a, b = Spool(tmp_path), Spool(tmp_path)
    a.append([_page(1)])
    b.append([{**_page(2), "messageId": str(uuid.uuid4())}])
    assert len(_files(tmp_path, OPEN)) == 2


def test_status_tells_live_dead_and_waiting_segments(tmp_path):
    live = Spool(tmp_path, segment_bytes=500, seal_after=3600)
    for i in range(5):
        live.append([_page(i)])  # rotates: some sealed, one open
    _orphan(tmp_path, orjson.dumps(_page(9)) + b"\n")
    live.append_rejected("{}", "a reason")
    found = status(tmp_path)
    assert (found["open"], found["orphaned"], found["rejects"]) == (1, 1, 1)
    assert found["sealed"] >= 1 and found["oldest_sealed_seconds"] >= 0
    assert found["bytes"] == live.depth_bytes()
    assert recover(tmp_path) != []  # the status probe left the orphan's lock free
