{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['user_id', 'activity_date'],
        on_schema_change='fail',
        pre_hook=["{{ trackhouse.delete_rows_of_other_timezones() }}", "{{ trackhouse.reset_after_deletions() }}"],
    )
}}

{#
    One row per user per local date (report time zone) with activity, kept
    incrementally, with what the incremental models after it need to know:
    when the row was first written (first_built_at) and the latest batch
    behind it (last_load_sequence, numbered in commit order). int_activity_days_localized shows
    its user_id and activity_date.

    An activity_hourly row is a UTC hour. Whole-hour zones put all of it in one
    local date; in zones with a :30 or :45 offset a local midnight can fall
    inside the hour, and then the row counts on the date of its first and of
    its last event. Converting only the distinct hours (not every row) keeps
    this cheap.

    Incremental: a run recomputes every local date from `window_start_date` on,
    from all hourly rows that can touch it, and replaces those rows. Since the
    hourly rows only grow, a user-date never disappears, so this equals a full
    refresh. window_start_date mirrors the window activity_hourly has just
    recomputed (it is built first): the earlier of
      - the latest date built minus var `lookback_days` and two days (the hours
        activity_hourly re-read for late events, whatever the zone's offset), and
      - the date of the earliest hour with events of a batch committed after
        those the previous build saw.
    A row that already existed keeps its first_built_at, so the models after
    this one see only user-dates that are really new. Rows of another report
    time zone are deleted by the pre_hook first: a new zone rebuilds the table.
#}

with

hourly as (
    select * from {{ ref('trackhouse', 'activity_hourly') }}
),

{% if is_incremental() %}

    previous_build as (
        select
            {{ trackhouse.latest_until_build(
                'activity_date', trackhouse.report_date(trackhouse.build_started_at())) }} as latest_activity_date,
            max(last_load_sequence) as last_load_sequence,
            max(first_built_at) as latest_built_at
        from {{ this }}
    ),

    {# Read on its own, not through the `hourly` CTE, so that the scalar filter
       is pushed into the scan. #}
    late_hours as (
        select min(late.hour_start) as earliest_hour_start
        from {{ ref('trackhouse', 'activity_hourly') }} as late
        where {{ trackhouse.loaded_after(
            'late.last_load_sequence', '(select last_load_sequence from previous_build)') }}
    ),

    {# null when the table is empty: everything is (re)built #}
    reprocess_window as (
        select
            case
                when
                    late_hours.earliest_hour_start is not null
                    and {{ trackhouse.report_date('late_hours.earliest_hour_start') }}
                    < lookback.lookback_start_date
                    then {{ trackhouse.report_date('late_hours.earliest_hour_start') }}
                else lookback.lookback_start_date
            end as window_start_date
        from (
            select
                cast(
                    {{ dbt.dateadd('day', -1 * (var('lookback_days', 3) + 2), 'latest_activity_date') }}
                    as date
                ) as lookback_start_date
            from previous_build
        ) as lookback
        cross join late_hours
    ),

    {# Any hour that touches a date starts less than a day before the date's
       00:00 in UTC, whatever the zone. #}
    hours_in_window as (
        select *
        from hourly
        where
            hour_start >= coalesce(
                (
                    select {{ dbt.dateadd('day', -1, 'cast(window_start_date as timestamp)') }}
                    from reprocess_window
                ),
                cast('0001-01-01' as timestamp)
            )
    ),

    previous_days as (
        select
            user_id,
            activity_date,
            first_built_at
        from {{ this }}
        where activity_date >= (select window_start_date from reprocess_window)
    ),

    {# The database clock, kept increasing even if it steps back. #}
    build as (
        select
            case
                when
                    previous_build.latest_built_at is null
                    or {{ trackhouse.utc_now() }} > previous_build.latest_built_at
                    then {{ trackhouse.utc_now() }}
                else {{ dbt.dateadd('microsecond', 1, 'previous_build.latest_built_at') }}
            end as built_at
        from previous_build
    ),

{% else %}

    hours_in_window as (
        select * from hourly
    ),

    reprocess_window as (
        select cast(null as date) as window_start_date
    ),

    previous_days as (
        select
            cast(null as {{ dbt.type_string() }}) as user_id,
            cast(null as date) as activity_date,
            cast(null as timestamp) as first_built_at
        from reprocess_window
        where window_start_date is not null
    ),

    build as (
        select {{ trackhouse.utc_now() }} as built_at
    ),

{% endif %}

hours as (
    select distinct hour_start from hours_in_window
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
        end as activity_date,
        hourly.last_load_sequence
    from hours_in_window as hourly
    inner join hours_localized on hourly.hour_start = hours_localized.hour_start
    union all
    select
        hourly.user_id,
        {{ trackhouse.report_date('hourly.last_active_at') }} as activity_date,
        hourly.last_load_sequence
    from hours_in_window as hourly
    inner join hours_localized on hourly.hour_start = hours_localized.hour_start
    where hours_localized.first_minute_date <> hours_localized.last_minute_date
),

user_days as (
    select
        user_id,
        activity_date,
        max(last_load_sequence) as last_load_sequence
    from activity_points
    group by user_id, activity_date
),

final as (
    select
        user_days.user_id,
        user_days.activity_date,
        user_days.last_load_sequence,
        coalesce(previous_days.first_built_at, build.built_at) as first_built_at,
        cast('{{ var("report_timezone", "UTC") }}' as {{ dbt.type_string() }}) as report_timezone
    from user_days
    cross join build
    cross join reprocess_window
    left join previous_days
        on
            user_days.user_id = previous_days.user_id
            and user_days.activity_date = previous_days.activity_date
    where
        reprocess_window.window_start_date is null
        or user_days.activity_date >= reprocess_window.window_start_date
)

select * from final
