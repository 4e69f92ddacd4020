{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='grain',
        on_schema_change='fail',
        pre_hook="{{ trackhouse.reset_after_deletions() }}",
    )
}}

{#
    Distinct active users per whole local day, ISO week (from Monday) and
    calendar month in the report time zone: what active_users,
    usage_calendar_monthly and usage_daily report, before those cut the last
    period at the report end. Not cut here, so nothing in it depends on as_of.

    Incremental: the user-dates added since the previous build (first_built_at
    after its counted_through) start at some date; every period that starts on
    or after that date's Monday or first of the month (whichever is earlier) is
    counted again from the user-dates, the earlier periods are copied. A period
    only changes when user-dates are added in it, so this equals a full refresh.
    When the user-dates were rebuilt (a full refresh of them, or a new report
    time zone: none of their rows is as old as what was counted) everything is
    counted again. Each run returns every row, a few hundred; delete+insert on
    grain replaces them all.
#}

{# The user-dates are read with ref() where they are used, not through one
   import CTE: DuckDB materializes a CTE used twice (here: all of them). #}

with

previous_counts as (
    {% if is_incremental() %}
        select * from {{ this }}
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as grain,
            cast(null as date) as period_start_date,
            cast(null as bigint) as active_users,
            cast(null as timestamp) as counted_through
        from {{ ref('trackhouse', 'int_activity_days_accumulated') }}
        where false
    {% endif %}
),

previous_build as (
    select max(counted_through) as counted_through
    from previous_counts
),

changes as (
    select
        min(activity_days.first_built_at) as earliest_built_at,
        max(activity_days.first_built_at) as latest_built_at,
        min(
            case
                when
                    previous_build.counted_through is null
                    or activity_days.first_built_at > previous_build.counted_through
                    then activity_days.activity_date
            end
        ) as earliest_new_date
    from {{ ref('trackhouse', 'int_activity_days_accumulated') }} as activity_days
    cross join previous_build
),

{# recount_start_date null: nothing new, every row is copied #}
recount_window as (
    select
        coalesce(
            previous_build.counted_through is null
            or changes.earliest_built_at > previous_build.counted_through,
            false
        ) as is_full_recount,
        case
            when
                previous_build.counted_through is null
                or changes.earliest_built_at > previous_build.counted_through
                then cast('0001-01-01' as date)
            else
                least(
                    cast({{ dbt.date_trunc('week', 'changes.earliest_new_date') }} as date),
                    cast({{ dbt.date_trunc('month', 'changes.earliest_new_date') }} as date)
                )
        end as recount_start_date
    from previous_build
    cross join changes
),

kept as (
    select
        previous_counts.grain,
        previous_counts.period_start_date,
        previous_counts.active_users
    from previous_counts
    cross join recount_window
    where
        not recount_window.is_full_recount
        and (
            recount_window.recount_start_date is null
            or previous_counts.period_start_date < recount_window.recount_start_date
        )
),

recount_days as (
    select
        user_id,
        activity_date
    from {{ ref('trackhouse', 'int_activity_days_accumulated') }}
    where activity_date >= (select recount_start_date from recount_window)
),

{# A day is a count of (already distinct) user-dates. Weeks and months that
   start before the recount start would be missing days: they are kept. #}
recounted as (
    select
        'day' as grain,
        activity_date as period_start_date,
        count(*) as active_users
    from recount_days
    group by activity_date
    union all
    select
        'week' as grain,
        period_start_date,
        count(distinct user_id) as active_users
    from (
        select
            user_id,
            cast({{ dbt.date_trunc('week', 'activity_date') }} as date) as period_start_date
        from recount_days
    ) as weeks
    where period_start_date >= (select recount_start_date from recount_window)
    group by period_start_date
    union all
    select
        'month' as grain,
        period_start_date,
        count(distinct user_id) as active_users
    from (
        select
            user_id,
            cast({{ dbt.date_trunc('month', 'activity_date') }} as date) as period_start_date
        from recount_days
    ) as months
    where period_start_date >= (select recount_start_date from recount_window)
    group by period_start_date
),

final as (
    select
        cast(counts.grain as {{ dbt.type_string() }}) as grain,
        counts.period_start_date,
        cast(counts.active_users as bigint) as active_users,
        changes.latest_built_at as counted_through
    from (
        select * from kept
        union all
        select * from recounted
    ) as counts
    cross join changes
)

select * from final
