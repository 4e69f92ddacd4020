"""The report-time-zone macros, checked against Python's zoneinfo on both targets."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest


def _show(warehouse, sql: str, vars: dict) -> list[dict]:
    proc = warehouse.dbt(
        "show", "--inline", sql, "--output", "json", "--log-format", "json", vars=vars
    )
    for line in proc.stdout.splitlines():
        data = json.loads(line).get("data", {})
        if "preview" in data:
            return json.loads(data["preview"])
    raise AssertionError(proc.stdout)


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_as_of_defaults_to_today_in_the_report_time_zone(warehouse, tz):
    (row,) = _show(warehouse, "select {{ trackhouse.as_of_date() }} as d", {"report_timezone": tz})
    assert str(row["d"])[:10] == datetime.now(ZoneInfo(tz)).date().isoformat()


def _ts(value: str) -> str:
    return f"cast('{value}' as timestamp)"


def test_local_midnights_across_dst(warehouse):
    sql = f"""
        select
            {{{{ trackhouse.to_report_time("{_ts("2024-03-31 00:59:59")}") }}}} as before_jump,
            {{{{ trackhouse.to_report_time("{_ts("2024-03-31 01:00:00")}") }}}} as after_jump,
            {{{{ trackhouse.from_report_time("{_ts("2024-07-01 00:00:00")}") }}}} as july_midnight,
            {{{{ trackhouse.report_date("{_ts("2024-10-26 22:30:00")}") }}}} as late_october
    """
    (row,) = _show(warehouse, sql, {"report_timezone": "Europe/Amsterdam"})
    values = {k: str(v).replace("T", " ") for k, v in row.items()}
    # Amsterdam jumps from 02:00 to 03:00 local at 01:00 UTC on 2024-03-31.
    assert values["before_jump"].startswith("2024-03-31 01:59:59")
    assert values["after_jump"].startswith("2024-03-31 03:00:00")
    assert values["july_midnight"].startswith("2024-06-30 22:00:00")  # CEST: UTC+2
    assert values["late_october"][:10] == "2024-10-27"


def test_as_of_is_taken_once_per_invocation_not_from_the_database_clock(warehouse):
    """Every model of one build must cut at the same date, also when the build
    crosses local midnight: as_of is the date of run_started_at (a literal
    computed in Jinja), not now() read by each model's query."""
    proc = warehouse.dbt(
        "compile",
        "--inline",
        "select {{ trackhouse.as_of_date() }} as d, {{ trackhouse.build_started_at() }} as t",
        vars={"report_timezone": "Pacific/Kiritimati"},
    )
    compiled = proc.stdout.lower()
    assert "now()" not in compiled and "current_timestamp" not in compiled
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    assert f"cast('{today}' as date)" in compiled
