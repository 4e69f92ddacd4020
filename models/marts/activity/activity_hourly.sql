{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['user_id', 'hour_start'],
        on_schema_change='fail',
        pre_hook="{{ trackhouse.reset_after_deletions() }}",
    )
}}

{#
    One row per user per UTC clock hour with any activity. Incremental: a run
    recomputes every hour from `window_start` on, from all raw activity in it,
    and replaces those rows (delete+insert on user_id, hour_start). Because the
    raw table only grows, that gives exactly what a full refresh gives for
    those hours. window_start is the earlier of
      - the latest hour built, up to the build's start (a future timestamp does
        not move it), minus var `lookback_days`, and
      - the hour of the earliest event in a batch committed after those the
        previous build saw (load_sequence, numbered in commit order: a late
        backfill of any age, also one whose batches commit around a build).
#}

with

activity as (
    select * from {{ ref('trackhouse', 'stg_activity_events') }}
),

{% if is_incremental() %}

    previous_build as (
        select
            {{ trackhouse.latest_until_build('hour_start') }} as latest_hour_start,
            max(last_load_sequence) as last_load_sequence
        from {{ this }}
    ),

    {# Read on their own, not through the `activity` CTE: a CTE used twice is
       materialized, and the scalar filters below are pushed into the raw scan. #}
    late_arrivals as (
        select min(late.active_at) as earliest_active_at
        from {{ ref('trackhouse', 'stg_activity_events') }} as late
        where {{ trackhouse.loaded_after(
            'late.load_sequence', '(select last_load_sequence from previous_build)') }}
    ),

    {# an empty previous build has no window: read everything (from year 1) #}
    reprocess_window as (
        select
            coalesce(
                case
                    when late_arrivals.earliest_active_at < lookback.lookback_start
                        then {{ dbt.date_trunc('hour', 'late_arrivals.earliest_active_at') }}
                    else lookback.lookback_start
                end,
                cast('0001-01-01' as timestamp)
            ) as window_start
        from (
            select
                {{ dbt.dateadd('day', -1 * var('lookback_days', 3), 'latest_hour_start') }}
                    as lookback_start
            from previous_build
        ) as lookback
        cross join late_arrivals
    ),

    activity_in_window as (
        select *
        from activity
        where active_at >= (select window_start from reprocess_window)
    ),

{% else %}

    activity_in_window as (
        select * from activity
    ),

{% endif %}

hourly as (
    select
        {# the contract's type on both targets, so an incremental run sees no schema change #}
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast({{ dbt.date_trunc('hour', 'active_at') }} as timestamp) as hour_start,
        min(active_at) as first_active_at,
        max(active_at) as last_active_at,
        count(*) as event_count,
        max(received_at) as last_received_at,
        max(load_sequence) as last_load_sequence
    from activity_in_window
    group by user_id, {{ dbt.date_trunc('hour', 'active_at') }}
)

select * from hourly
