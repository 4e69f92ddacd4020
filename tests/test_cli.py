"""The command line as a user meets it: exit codes, formats, options anywhere, pipes.

Usage errors run in-process (`trackhouse.cli.main`); everything that touches a
warehouse runs the installed `trackhouse` script in a subprocess against a real
DuckDB file or PostgreSQL database.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import orjson
import pytest

from trackhouse.cli import EXIT_BUSY, EXIT_FAILURE, EXIT_OK, EXIT_PIPE_CLOSED, EXIT_USAGE, main

from factories import page, track

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
SHOP = "https://shop.example"


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help_with_examples() -> None:
    done = subprocess.run(
        [str(BIN / "trackhouse"), "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == EXIT_OK
    assert done.stdout.strip() == f"trackhouse, version {version('trackhouse')}"
    helped = subprocess.run(
        [str(BIN / "trackhouse"), "query", "attribution", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert helped.returncode == EXIT_OK
    assert "Examples:" in helped.stdout and "--source-window google=7" in helped.stdout
    assert "--format [table|json|csv]" in helped.stdout and "--limit N" in helped.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("query", "attribution", "--bogus"), "No such option '--bogus'"),
        (("query", "attribution", "--model", "x"), "'first_touch', 'last_touch'"),
        (("--format", "xml", "summary"), "'table', 'json', 'csv'"),
        (("query", "attribution", "--limit", "-1"), "--limit"),
        (("load",), "Missing argument 'FILE...'"),
        (("query", "usage"), "--subscription-start"),
        (("query", "usage", "--calendar", "--daily"), "exclude each other"),
        (("query", "attribution", "--source-window", "google"), "SOURCE=DAYS"),
        (("nope",), "No such command 'nope'"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    code, out, err = run_main(capsys, *args)
    assert code == EXIT_USAGE
    assert says in err and out == ""
    assert "Traceback" not in err


def test_a_failure_exits_1_with_the_fix(warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing built yet: the query fails and says to run dbt build; a strict load
    with a rejected line fails too, a lenient one does not."""
    code, _out, err = run_main(capsys, "query", "attribution")
    assert code == EXIT_FAILURE
    assert "Traceback" not in err
    if warehouse.target == "duckdb":  # no file yet: a read never creates one
        assert "no DuckDB warehouse at" in err and "make demo" in err

    path = warehouse.write_ndjson([track("2024-05-01T10:00:00Z", "signup", user_id="u1")])
    with open(path, "ab") as f:
        f.write(b"{not json\n")
    strict = warehouse.cli("load", str(path), "--strict", check=False)
    assert strict.returncode == EXIT_FAILURE
    assert "accepted 1 + rejected 1" in strict.stdout

    code, _out, err = run_main(capsys, "query", "attribution")
    assert code == EXIT_FAILURE  # loaded, not built yet
    assert "run `dbt build`" in err and "Traceback" not in err
    lenient = warehouse.cli("load", str(path), "--format", "csv", check=False)
    assert lenient.returncode == EXIT_OK
    (counts,) = csv.DictReader(io.StringIO(lenient.stdout))
    assert (counts["received"], counts["rejected"], counts["duplicates"]) == ("2", "1", "1")


def test_a_busy_duckdb_file_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holds the DuckDB file for writing (as dbt does during a build)."""
    db = tmp_path / "busy.duckdb"
    env = {
        **os.environ,
        "TRACKHOUSE_TARGET": "duckdb",
        "TRACKHOUSE_DUCKDB_PATH": str(db),
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        "TRACKHOUSE_LOCK_TIMEOUT": "1",
    }
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('holding', flush=True); time.sleep(120)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        events = tmp_path / "events.ndjson"
        events.write_bytes(orjson.dumps(track("2024-05-01T10:00:00Z", "signup", user_id="u1")))
        started = time.monotonic()
        done = subprocess.run(
            [str(BIN / "trackhouse"), "load", str(events)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == EXIT_BUSY, done.stderr
        assert "busy" in done.stderr and str(db) in done.stderr
        assert "Traceback" not in done.stderr
        assert time.monotonic() - started < 110  # it gave up; it did not wait for the holder
    finally:
        holder.kill()
        holder.wait(timeout=30)


def conversions_with_touchpoints(count: int) -> list[dict]:
    """`count` purchases, each after a Google touchpoint of its buyer; times carry
    microseconds, which a table leaves out and JSON/CSV keep."""
    events = []
    for i in range(count):
        buyer = f"buyer-{i:03d}"
        day = 1 + i % 28
        events.append(
            page(
                f"2024-05-{day:02d}T08:00:00.250000Z",
                f"{SHOP}/?utm_source=google&utm_campaign=spring",
                user_id=buyer,
                message_id=f"visit-{i}",
            )
        )
        events.append(
            track(
                f"2024-05-{day:02d}T09:30:15.123456Z",
                "purchase",
                user_id=buyer,
                message_id=f"order-{i}",
                value="10.50",
                currency="EUR",
            )
        )
    return events


def test_formats_limits_and_options_anywhere(warehouse) -> None:
    path = warehouse.write_ndjson(conversions_with_touchpoints(60))
    warehouse.cli("load", str(path))
    warehouse.build(
        "+touchpoints",
        "+conversions",
        "+conversion_attribution",
        "+activity_hourly",
        "trackhouse_settings",
    )
    target = warehouse.target

    # --format and --target before the subcommand, after it, or on the group: one answer.
    outputs = [
        warehouse.cli(*args).stdout
        for args in (
            ("--format", "json", "--target", target, "query", "attribution"),
            ("query", "attribution", "--target", target, "--format", "json"),
            ("query", "--format", "json", "attribution", "-t", target),
            ("-f", "table", "query", "attribution", "--format", "json"),  # the last one wins
        )
    ]
    assert len(set(outputs)) == 1
    rows = orjson.loads(outputs[0])
    assert len(rows) == 60  # JSON has every row (no table limit)
    first = next(r for r in rows if r["conversion_id"] == "order-0")
    assert first["converted_at"] == "2024-05-01T09:30:15.123456+00:00"
    assert first["touched_at"] == "2024-05-01T08:00:00.250000+00:00"
    assert first["utm_campaign"] == "spring" and first["value"] == 10.5

    # CSV: the same rows and columns as JSON, times in full with their offset.
    text = warehouse.cli("query", "attribution", "--format", "csv").stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [r["conversion_id"] for r in parsed] == [r["conversion_id"] for r in rows]
    assert list(parsed[0]) == list(rows[0])
    by_id = {r["conversion_id"]: r for r in parsed}
    assert by_id["order-0"]["converted_at"] == "2024-05-01T09:30:15.123456+00:00"
    assert by_id["order-0"]["eligible_touchpoints"] == "1"
    limited = warehouse.cli("query", "attribution", "--format", "csv", "--limit", "2").stdout
    assert len(limited.splitlines()) == 3  # the header and 2 rows

    # A table: 50 rows by default and a note on stderr; times to the second, marked UTC.
    table = warehouse.cli("query", "attribution")
    header, _rule, *lines = table.stdout.splitlines()
    assert "converted_at (UTC)" in header and "touched_at (UTC)" in header
    assert len(lines) == 50
    assert "10 more rows not shown" in table.stderr and "--limit 0" in table.stderr
    assert "2024-05-01 09:30:15" in table.stdout and ".123456" not in table.stdout
    everything = warehouse.cli("query", "attribution", "--limit", "0").stdout.splitlines()
    assert len(everything) == 2 + 60

    # Local dates are labelled with their time zone (the build's, or --timezone).
    days = warehouse.cli(
        "query", "active-users", "--grain", "day", "--start", "2024-05-01", "--end", "2024-05-03"
    ).stdout
    assert "period_start_date (UTC)" in days and "period_start (UTC)" in days
    days = warehouse.cli(
        "query",
        "active-users",
        "--grain",
        "day",
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-03",
        "--timezone",
        "Europe/Amsterdam",
    ).stdout
    assert "period_start_date (Europe/Amsterdam)" in days
    assert "2024-04-30 22:00:00" in days  # May 1 starts at 22:00 UTC in Amsterdam

    summary = orjson.loads(warehouse.cli("summary", "--format", "json").stdout)[0]
    assert summary["conversions"] == {"conversions": 60, "valid_conversions": 60}
    assert summary["top_campaigns"] == [
        {"utm_source": "google", "utm_campaign": "spring", "conversions": 60}
    ]


def test_a_closed_pipe_ends_quietly(warehouse) -> None:
    """`trackhouse query ... | head -1`: the reader goes away; no traceback."""
    path = warehouse.write_ndjson(conversions_with_touchpoints(3))
    warehouse.cli("load", str(path))
    proc = subprocess.Popen(
        [str(BIN / "trackhouse"), "summary", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **warehouse.env},
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_PIPE_CLOSED
    assert err == ""


def test_load_spool_drains_what_the_api_spooled(warehouse) -> None:
    """`trackhouse load --spool DIR`: what the API appended lands once; a second
    drain finds nothing; `spool status` shows the spool empty afterwards."""
    spool_dir = warehouse.tmp / "app-spool"
    script = (
        "import trackhouse\n"
        f"t = trackhouse.Tracker(spool_dir={str(spool_dir)!r}, drain='off')\n"
        "t.record_touchpoint('anon-1', 'https://shop.example/?utm_source=news')\n"
        "t.record_activity('u1')\n"
        "t.close()\n"
    )
    warehouse.run(sys.executable, "-c", script)
    first = warehouse.cli("load", "--spool", str(spool_dir), "--format", "json")
    [report] = orjson.loads(first.stdout)
    assert (report["received"], report["accepted"], report["rejected"]) == (2, 2, 0)
    again = warehouse.cli("load", "--spool", str(spool_dir))
    assert "received 0 = accepted 0" in again.stdout
    status = warehouse.cli("spool", "status", str(spool_dir), "--format", "json")
    [found] = orjson.loads(status.stdout)
    assert found["sealed"] == 0 and found["open"] == 0
    both = warehouse.cli("load", "x.ndjson", "--spool", str(spool_dir), check=False)
    assert both.returncode == EXIT_USAGE and "not both" in both.stderr


def test_hash_key_prints_the_configurable_form() -> None:
    done = subprocess.run(
        [str(BIN / "trackhouse"), "hash-key", "abc"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_forget_and_prune_from_the_command_line(warehouse) -> None:
    """`trackhouse forget` deletes a user's raw rows and says so; a replay is refused
    as suppressed; `prune --dry-run` changes nothing; an empty id is a usage error."""
    events = [
        track("2024-05-01T10:00:00Z", "signup", user_id="gone-1"),
        track("2024-05-01T11:00:00Z", "signup", user_id="stays-1"),
    ]
    path = warehouse.write_ndjson(events)
    warehouse.cli("load", str(path))
    done = warehouse.cli("forget", "gone-1", "--format", "json")
    [report] = orjson.loads(done.stdout)
    assert report["rows_deleted"] > 0
    table = warehouse.cli("forget", "gone-1")
    assert "deleted 0 raw rows" in table.stdout  # idempotent
    replay = warehouse.cli("load", str(path), "--format", "json")
    [loaded] = orjson.loads(replay.stdout)
    assert [r["reason"] for r in loaded["rejections"]] == ["suppressed"]
    dry = warehouse.cli("prune", "--dry-run", "--raw-retention-days", "1")
    assert dry.returncode == EXIT_OK and "would prune" in dry.stdout
    empty = warehouse.cli("forget", " ", check=False)
    assert empty.returncode == EXIT_USAGE and "empty" in empty.stderr
