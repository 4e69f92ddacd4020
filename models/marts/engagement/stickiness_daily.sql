{#
    Stickiness per local day, from the first day with activity to as_of:
    DAU (active that day), WAU (active in the 7 days ending that day), MAU
    (active in the 30 days ending that day, the statistics' rolling month),
    and the ratios DAU/WAU and DAU/MAU.

    Distinct counts over rolling windows without a self-join: each active day
    of a user covers the window days from it until the user's next active day
    (or the window's length, whichever comes first). A user's covering spans
    never overlap, so the number of spans covering a day is the number of
    distinct users active in the window ending on it: +1 where a span starts,
    -1 where it ends, and a running sum.
#}
with

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_localized') }}
),

reported_days as (
    select
        user_id,
        activity_date,
        lead(activity_date) over (partition by user_id order by activity_date) as next_activity_date
    from activity_days
    where activity_date < {{ trackhouse.report_end_date() }}
),

windows as (
    select
        'wau' as measure,
        7 as window_days
    union all
    select
        'mau' as measure,
        30 as window_days
),

spans as (
    select
        windows.measure,
        reported_days.activity_date as span_start_date,
        case
            when
                reported_days.next_activity_date is not null
                and reported_days.next_activity_date
                < cast({{ dbt.dateadd('day', 'windows.window_days', 'reported_days.activity_date') }} as date)
                then reported_days.next_activity_date
            else cast({{ dbt.dateadd('day', 'windows.window_days', 'reported_days.activity_date') }} as date)
        end as span_end_date
    from reported_days
    cross join windows
),

deltas as (
    select
        measure,
        span_start_date as change_date,
        1 as change
    from spans
    union all
    select
        measure,
        span_end_date as change_date,
        -1 as change
    from spans
),

daily_changes as (
    select
        change_date,
        sum(case when measure = 'wau' then change else 0 end) as wau_change,
        sum(case when measure = 'mau' then change else 0 end) as mau_change
    from deltas
    group by change_date
),

daily_active as (
    select
        activity_date,
        count(*) as dau
    from reported_days
    group by activity_date
),

day_offsets as (
    select
        first_date,
        {{ trackhouse.expand_series(
            0, dbt.datediff('first_date', trackhouse.as_of_date(), 'day')) }} as day_offset
    from (select min(activity_date) as first_date from reported_days) as firsts
    where first_date is not null
),

days as (
    select cast({{ dbt.dateadd('day', 'day_offset', 'first_date') }} as date) as date_day
    from day_offsets
),

counted as (
    select
        days.date_day,
        coalesce(daily_active.dau, 0) as dau,
        sum(coalesce(daily_changes.wau_change, 0)) over (
            order by days.date_day rows between unbounded preceding and current row
        ) as wau,
        sum(coalesce(daily_changes.mau_change, 0)) over (
            order by days.date_day rows between unbounded preceding and current row
        ) as mau
    from days
    left join daily_active
        on days.date_day = daily_active.activity_date
    left join daily_changes
        on days.date_day = daily_changes.change_date
),

final as (
    select
        date_day,
        cast(dau as bigint) as dau,
        cast(wau as bigint) as wau,
        cast(mau as bigint) as mau,
        cast(
            case
                when wau > 0
                    then {{ trackhouse.round_double('cast(dau as ' ~ trackhouse.double_type() ~ ') / wau', 6) }}
            end as numeric(9, 6)
        ) as dau_wau_ratio,
        cast(
            case
                when mau > 0
                    then {{ trackhouse.round_double('cast(dau as ' ~ trackhouse.double_type() ~ ') / mau', 6) }}
            end as numeric(9, 6)
        ) as dau_mau_ratio
    from counted
)

select * from final
