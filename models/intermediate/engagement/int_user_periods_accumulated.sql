{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['user_id', 'grain', 'period_start_date'],
        on_schema_change='fail',
        pre_hook="{{ trackhouse.reset_after_deletions(trackhouse.engagement_fingerprint()) }}",
    )
}}

{#
    One row per user, grain (day, week, month) and local period (report time
    zone) in which the user had any activity, kept incrementally, with the
    first local date of activity in the period (first_active_date) and the
    latest user-date build it has seen (built_through). Not cut at as_of:
    int_user_periods_active keeps the periods with first_active_date before the
    report end, so a new as_of changes nothing stored here.

    Incremental (DuckDB, PostgreSQL; a table on Spark, dbt_project.yml): a run
    reads only the user-dates int_activity_days_accumulated wrote after
    built_through (first_built_at), groups them into their periods, and merges
    them with the stored rows of the same periods (delete+insert on user,
    grain and period): first_active_date is the earlier of the stored and the
    new one. User-dates never disappear but through `trackhouse forget` /
    `prune` (the pre_hook reset_after_deletions empties this table, the run
    rebuilds it) or a new report time zone (its fingerprint is kept with the
    deletions seen: it empties the table the same way), so this equals a full
    refresh. When the user-dates were rebuilt (none of them is as old as
    built_through) every one is read again.
#}

with

{% if is_incremental() %}

    previous_build as (
        select max(built_through) as built_through
        from {{ this }}
    ),

{% else %}

    previous_build as (
        select cast(null as timestamp) as built_through
    ),

{% endif %}

changes as (
    select
        min(activity_days.first_built_at) as earliest_built_at,
        max(activity_days.first_built_at) as latest_built_at
    from {{ ref('trackhouse', 'int_activity_days_accumulated') }} as activity_days
),

{# null: every user-date is read (first build, or the user-dates were rebuilt) #}
read_window as (
    select
        case
            when
                previous_build.built_through is not null
                and changes.earliest_built_at <= previous_build.built_through
                then previous_build.built_through
        end as read_after
    from previous_build
    cross join changes
),

new_days as (
    select
        activity_days.user_id,
        activity_days.activity_date
    from {{ ref('trackhouse', 'int_activity_days_accumulated') }} as activity_days
    cross join read_window
    where
        read_window.read_after is null
        or activity_days.first_built_at > read_window.read_after
),

grains as (
    {{ trackhouse.engagement_grains() }}
),

new_periods as (
    select
        new_days.user_id,
        grains.grain,
        {{ trackhouse.period_start('grains.grain', 'new_days.activity_date') }} as period_start_date,
        min(new_days.activity_date) as first_active_date
    from new_days
    cross join grains
    group by
        new_days.user_id,
        grains.grain,
        {{ trackhouse.period_start('grains.grain', 'new_days.activity_date') }}
),

{% if is_incremental() %}

    merged as (
        select
            new_periods.user_id,
            new_periods.grain,
            new_periods.period_start_date,
            case
                when
                    stored.first_active_date is not null
                    and stored.first_active_date < new_periods.first_active_date
                    then stored.first_active_date
                else new_periods.first_active_date
            end as first_active_date
        from new_periods
        left join {{ this }} as stored
            on
                new_periods.user_id = stored.user_id
                and new_periods.grain = stored.grain
                and new_periods.period_start_date = stored.period_start_date
    ),

{% else %}

    merged as (
        select * from new_periods
    ),

{% endif %}

final as (
    select
        cast(merged.user_id as {{ dbt.type_string() }}) as user_id,
        cast(merged.grain as {{ dbt.type_string() }}) as grain,
        cast(merged.period_start_date as date) as period_start_date,
        cast(merged.first_active_date as date) as first_active_date,
        cast(changes.latest_built_at as timestamp) as built_through
    from merged
    cross join changes
)

select * from final
