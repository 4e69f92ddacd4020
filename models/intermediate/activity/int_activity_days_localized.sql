{{ config(materialized='table') }}

{#
    One row per user per local date (report time zone) with activity: what
    every usage mart counts. Built once per run because four marts read it.

    An activity_hourly row is a UTC hour. Whole-hour zones put all of it in one
    local date; in zones with a :30 or :45 offset a local midnight can fall
    inside the hour, and then the row counts on the date of its first and of
    its last event. Converting only the distinct hours (not every row) keeps
    this cheap; per-row conversion happens only for hours that straddle a
    local midnight.
#}

with

hourly as (
    select * from {{ ref('activity_hourly') }}
),

hours as (
    select distinct hour_start from hourly
),

hours_localized as (
    select
        hour_start,
        {{ trackhouse.report_date('hour_start') }} as first_minute_date,
        {{ trackhouse.report_date(dbt.dateadd('minute', 59, 'hour_start')) }} as last_minute_date
    from hours
),

activity_points as (
    select
        hourly.user_id,
        case
            when hours_localized.first_minute_date = hours_localized.last_minute_date
                then hours_localized.first_minute_date
            else {{ trackhouse.report_date('hourly.first_active_at') }}
        end as activity_date
    from hourly
    inner join hours_localized on hourly.hour_start = hours_localized.hour_start
    union all
    select
        hourly.user_id,
        {{ trackhouse.report_date('hourly.last_active_at') }} as activity_date
    from hourly
    inner join hours_localized on hourly.hour_start = hours_localized.hour_start
    where hours_localized.first_minute_date <> hours_localized.last_minute_date
),

final as (
    select distinct
        user_id,
        activity_date
    from activity_points
)

select * from final
