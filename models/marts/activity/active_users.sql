{#
    Distinct active users per local day, ISO week (Monday) and calendar month
    in the report time zone, from the period of the first activity to the one
    holding as_of; the last period of each grain is cut at the day after as_of.
    Periods without activity are listed with 0.

    The counts of whole periods come from int_activity_periods_counted, kept
    incrementally. A cut period is that count minus the users whose only
    activity in the period came after as_of: the work grows with the activity
    after as_of (usually none), not with the history.
#}

with

counted as (
    select * from {{ ref('trackhouse', 'int_activity_periods_counted') }}
),

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_localized') }}
),

day_offsets as (
    select
        first_date,
        {{ trackhouse.expand_series(
            0, dbt.datediff('first_date', trackhouse.as_of_date(), 'day')) }} as day_offset
    from (
        select min(period_start_date) as first_date
        from counted
        where grain = 'day' and period_start_date < {{ trackhouse.report_end_date() }}
    ) as firsts
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
            when full_period_end_date < {{ trackhouse.report_end_date() }} then full_period_end_date
            else {{ trackhouse.report_end_date() }}
        end as period_end_date,
        full_period_end_date
    from (
        select
            grain,
            period_start_date,
            case grain
                when 'day' then cast({{ dbt.dateadd('day', 1, 'period_start_date') }} as date)
                when 'week' then cast({{ dbt.dateadd('day', 7, 'period_start_date') }} as date)
                else {{ trackhouse.add_months_clamped('period_start_date', 1) }}
            end as full_period_end_date
        from periods
    ) as with_next
),

{# -- the periods cut at the report end (the current week and month) -- #}

cut_periods as (
    select
        grain,
        period_start_date,
        full_period_end_date
    from periods_bounded
    where period_end_date < full_period_end_date
),

{{ trackhouse.late_only_users(
    'cut_periods', 'activity_days', ['grain', 'period_start_date']) }},

final as (
    select
        cast(periods_bounded.grain as {{ dbt.type_string() }}) as grain,
        {{ trackhouse.local_midnight('periods_bounded.period_start_date') }} as period_start,
        {{ trackhouse.local_midnight('periods_bounded.period_end_date') }} as period_end,
        periods_bounded.period_start_date,
        periods_bounded.period_end_date,
        cast(
            coalesce(counted.active_users, 0) - coalesce(late_only.late_only_users, 0)
            as bigint
        ) as active_users
    from periods_bounded
    left join counted
        on
            periods_bounded.grain = counted.grain
            and periods_bounded.period_start_date = counted.period_start_date
    left join late_only
        on
            periods_bounded.grain = late_only.grain
            and periods_bounded.period_start_date = late_only.period_start_date
)

select * from final
