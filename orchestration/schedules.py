"""Jobs and schedules: an hourly refresh of the activity and attribution marts, a
daily build of everything (statistics included), and a daily prune of raw personal
data past its retention (trackhouse.privacy.prune). All start stopped; turn them on
under Automation in the UI (the state is kept in the Dagster instance)."""

import logging

import dagster as dg
from dagster_dbt import build_schedule_from_dbt_selection

from .dbt_cli import marts_selection
from .environment import WAREHOUSE_POOL
from .resources import Warehouse

log = logging.getLogger(__name__)

HOURLY_AREAS = ("activity", "attribution")
HOURLY_JOB, HOURLY_SCHEDULE = "refresh_activity_attribution", "hourly_activity_attribution"
DAILY_JOB, DAILY_SCHEDULE = "build_everything", "daily_full_build"
# Five past the hour: the hour that just ended is complete (late writes included).
HOURLY_CRON = "5 * * * *"
DAILY_CRON = "30 3 * * *"
PRUNE_JOB, PRUNE_SCHEDULE = "prune_raw_data", "daily_prune"
# Before the daily build, so it builds from pruned raw tables.
PRUNE_CRON = "0 3 * * *"


class PruneConfig(dg.Config):
    """Overrides of the retention vars for one run (unset: the vars of the last build)."""

    raw_retention_days: int | None = None
    url_query_retention_days: int | None = None
    user_agent_retention_days: int | None = None
    dry_run: bool = False


@dg.op(
    pool=WAREHOUSE_POOL,
    description="Blank raw payloads, URL query strings and user agents older than the "
    "retention vars (raw_retention_days, url_query_retention_days, "
    "user_agent_retention_days) of the last dbt build; see docs/privacy.md.",
)
def prune_expired(
    context: dg.OpExecutionContext, config: PruneConfig, warehouse: Warehouse
) -> dg.Output[int]:
    from trackhouse.privacy import prune

    report = prune(warehouse.settings(), **config.model_dump())
    context.log.info(report.summary())
    return dg.Output(report.total, metadata={**report.rows, "summary": report.summary()})


@dg.job(name=PRUNE_JOB, description="Apply the retention settings to the raw tables.")
def prune_job() -> None:
    prune_expired()


def build_prune_schedule() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=PRUNE_SCHEDULE,
        job=prune_job,
        cron_schedule=PRUNE_CRON,
        execution_timezone="UTC",
        tags={"trackhouse/schedule": "prune"},
    )


def build_schedules(
    dbt_assets: dg.AssetsDefinition, areas_present: set[str]
) -> list[dg.ScheduleDefinition]:
    """`areas_present`: the mart folders that have models; an hourly selection of a
    folder without models would select nothing and fail to load, so it is left out
    (with a warning) until the folder has models."""
    schedules = [
        build_prune_schedule(),
        build_schedule_from_dbt_selection(
            [dbt_assets],
            job_name=DAILY_JOB,
            schedule_name=DAILY_SCHEDULE,
            cron_schedule=DAILY_CRON,
            dbt_select="fqn:*",
            execution_timezone="UTC",
            tags={"trackhouse/schedule": "daily"},
        ),
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
