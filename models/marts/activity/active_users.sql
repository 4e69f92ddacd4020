{#
    Distinct active users per local day, ISO week (Monday) and calendar month
    in the report time zone, from the period of the first activity to the one
    holding as_of; the last period of each grain is cut at the day after as_of.
    Periods without activity are listed with 0.
#}

with

activity_days as (
    select * from {{ ref('int_activity_days_localized') }}
    where activity_date < {{ trackhouse.report_end_date() }}
),

day_offsets as (
    select
        first_date,
        {{ trackhouse.expand_series(
            0, dbt.datediff('first_date', trackhouse.as_of_date(), 'day')) }} as day_offset
    from (select min(activity_date) as first_date from activity_days) as firsts
    where first_date is not null
),

days as (
    select cast({{ dbt.dateadd('day', 'day_offset', 'first_date') }} as date) as date_day
    from day_offsets
),

periods as (
    select
        'day' as grain,
        date_day as period_start_date
    from days
    union all
    select distinct
        'week' as grain,
        cast({{ dbt.date_trunc('week', 'date_day') }} as date) as period_start_date
    from days
    union all
    select distinct
        'month' as grain,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as period_start_date
    from days
),

periods_bounded as (
    select
        grain,
        period_start_date,
        case
            when next_start_date < {{ trackhouse.report_end_date() }} then next_start_date
            else {{ trackhouse.report_end_date() }}
        end as period_end_date
    from (
        select
            grain,
            period_start_date,
            case grain
                when 'day' then cast({{ dbt.dateadd('day', 1, 'period_start_date') }} as date)
                when 'week' then cast({{ dbt.dateadd('day', 7, 'period_start_date') }} as date)
                else {{ trackhouse.add_months_clamped('period_start_date', 1) }}
            end as next_start_date
        from periods
    ) as with_next
),

{# One aggregation per grain: a day is a count of (already distinct) user-days. #}
active as (
    select
        'day' as grain,
        activity_date as period_start_date,
        count(*) as active_users
    from activity_days
    group by 1, 2
    union all
    select
        'week' as grain,
        cast({{ dbt.date_trunc('week', 'activity_date') }} as date) as period_start_date,
        count(distinct user_id) as active_users
    from activity_days
    group by 1, 2
    union all
    select
        'month' as grain,
        cast({{ dbt.date_trunc('month', 'activity_date') }} as date) as period_start_date,
        count(distinct user_id) as active_users
    from activity_days
    group by 1, 2
),

final as (
    select
        cast(periods_bounded.grain as {{ dbt.type_string() }}) as grain,
        {{ trackhouse.local_midnight('periods_bounded.period_start_date') }} as period_start,
        {{ trackhouse.local_midnight('periods_bounded.period_end_date') }} as period_end,
        periods_bounded.period_start_date,
        periods_bounded.period_end_date,
        cast(coalesce(active.active_users, 0) as bigint) as active_users
    from periods_bounded
    left join active
        on
            periods_bounded.grain = active.grain
            and periods_bounded.period_start_date = active.period_start_date
)

select * from final
