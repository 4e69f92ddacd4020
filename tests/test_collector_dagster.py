"""The Dagster landing sensor also drains the spool the collector writes to."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from test_orchestration import dagster_environment

from trackhouse.query import fetch
from trackhouse.spool import Spool

pytestmark = [pytest.mark.xdist_group("dagster"), pytest.mark.slow]


def _tick(sensor: dg.SensorDefinition, landing: object) -> list[dg.RunRequest]:
    with dg.DagsterInstance.get() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"landing": landing})
        return list(sensor.evaluate_tick(context).run_requests or [])


def test_the_landing_sensor_drains_the_collectors_spool(tmp_path: Path, monkeypatch) -> None:
    for key, value in dagster_environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    from orchestration.environment import load_environment
    from orchestration.ingestion import build_ingestion_assets
    from orchestration.resources import LandingFolder, Warehouse
    from orchestration.sensors import LOAD_JOB_NAME, build_landing_sensor

    # The sensor and the ingestion asset themselves (the full job adds dbt's source
    # checks, which test_orchestration runs).
    environment = load_environment()
    sensor = build_landing_sensor(environment, dg.define_asset_job(LOAD_JOB_NAME))
    landing = LandingFolder(path=str(environment.landing_dir), settle_seconds=120)
    warehouse = Warehouse(target="duckdb", project_dir=str(environment.project_dir))
    spool_dir = tmp_path / "spool"
    assert _tick(sensor, landing) == []  # nothing anywhere

    with Spool(spool_dir, source="collector") as spool:
        spool.append(
            [
                {
                    "type": "track",
                    "event": "signup",
                    "userId": "u1",
                    "messageId": "c-1",
                    "timestamp": "2026-03-01T10:00:00Z",
                },
                {
                    "type": "track",
                    "event": "signup",
                    "userId": "u2",
                    "messageId": "c-2",
                    "timestamp": "not a time",
                },
            ]
        )
    (request,) = _tick(sensor, landing)
    assert request.tags["trackhouse/spool"] == str(spool_dir)
    # Same files, same key: Dagster launches it once.
    assert _tick(sensor, landing)[0].run_key == request.run_key

    result = dg.materialize(
        [build_ingestion_assets(environment)],
        resources={"warehouse": warehouse},
        run_config=request.run_config,
        raise_on_error=False,
    )
    assert result.success
    assert [r["message_id"] for r in fetch('select message_id from "trackhouse_raw"."events"')] == [
        "c-1"
    ]
    (rejected,) = fetch('select source, reason from "trackhouse_raw"."rejected"')
    assert rejected["source"] == "collector" and "timestamp" in rejected["reason"]
    assert _tick(sensor, landing) == []  # drained: the segment is gone
