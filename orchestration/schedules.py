"""Jobs and schedules: an hourly refresh of the activity and attribution marts, a
daily build of everything (statistics included). Both start stopped; turn them on
under Automation in the UI (the state is kept in the Dagster instance)."""

from __future__ import annotations

import logging

import dagster as dg
from dagster_dbt import build_schedule_from_dbt_selection

from .dbt_cli import marts_selection

log = logging.getLogger(__name__)

HOURLY_AREAS = ("activity", "attribution")
HOURLY_JOB, HOURLY_SCHEDULE = "refresh_activity_attribution", "hourly_activity_attribution"
DAILY_JOB, DAILY_SCHEDULE = "build_everything", "daily_full_build"
# Five past the hour: the hour that just ended is complete (late writes included).
HOURLY_CRON = "5 * * * *"
DAILY_CRON = "30 3 * * *"


def build_schedules(
    dbt_assets: dg.AssetsDefinition, areas_present: set[str]
) -> list[dg.ScheduleDefinition]:
    """`areas_present`: the mart folders that have models; an hourly selection of a
    folder without models would select nothing and fail to load, so it is left out
    (with a warning) until the folder has models."""
    schedules = [
        build_schedule_from_dbt_selection(
            [dbt_assets],
            job_name=DAILY_JOB,
            schedule_name=DAILY_SCHEDULE,
            cron_schedule=DAILY_CRON,
            dbt_select="fqn:*",
            execution_timezone="UTC",
            tags={"trackhouse/schedule": "daily"},
        )
    ]
    hourly = [area for area in HOURLY_AREAS if area in areas_present]
    for area in sorted(set(HOURLY_AREAS) - set(hourly)):
        log.warning("models/marts/%s has no models: the hourly refresh leaves it out", area)
    if hourly:
        schedules.append(
            build_schedule_from_dbt_selection(
                [dbt_assets],
                job_name=HOURLY_JOB,
                schedule_name=HOURLY_SCHEDULE,
                cron_schedule=HOURLY_CRON,
                dbt_select=marts_selection(hourly),
                execution_timezone="UTC",
                tags={"trackhouse/schedule": "hourly"},
            )
        )
    return schedules
