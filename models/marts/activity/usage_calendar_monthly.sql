{#
    django-souvenirs' calendar_monthly_usage for the whole site: one row per
    calendar month in the report time zone, from the month of the first join or
    activity to the month of as_of (cut at the day after as_of). The active
    users of a month are active_users' month rows (the same calendar months,
    cut the same way), which are kept incrementally.
#}

with

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

active_months as (
    select
        period_start_date,
        active_users
    from {{ ref('trackhouse', 'active_users') }}
    where grain = 'month'
),

member_dates as (
    select
        is_active,
        {{ trackhouse.report_date('joined_at') }} as joined_date
    from users
),

joins_by_date as (
    select
        joined_date,
        count(*) as joined_users,
        sum(case when is_active then 1 else 0 end) as joined_active_users
    from member_dates
    group by 1
),

first_month as (
    select cast({{ dbt.date_trunc('month', 'min(first_date)') }} as date) as first_month_start
    from (
        select min(joined_date) as first_date from joins_by_date
        union all
        select min(period_start_date) as first_date from active_months
    ) as firsts
),

month_offsets as (
    select
        first_month_start,
        {{ trackhouse.expand_series(
            0, dbt.datediff('first_month_start', trackhouse.as_of_date(), 'month')) }}
            as month_offset
    from first_month
    where first_month_start is not null
),

months as (
    select
        period_start_date,
        case
            when next_month_start < {{ trackhouse.report_end_date() }} then next_month_start
            else {{ trackhouse.report_end_date() }}
        end as period_end_date
    from (
        select
            {{ trackhouse.add_months_clamped('first_month_start', 'month_offset') }}
                as period_start_date,
            {{ trackhouse.add_months_clamped('first_month_start', 'month_offset + 1') }}
                as next_month_start
        from month_offsets
    ) as month_bounds
),

registered as (
    select
        months.period_start_date,
        coalesce(sum(joins_by_date.joined_users), 0) as registered_users,
        coalesce(sum(joins_by_date.joined_active_users), 0) as activated_users
    from months
    left join joins_by_date
        on joins_by_date.joined_date < months.period_end_date
    group by 1
),

final as (
    select
        {{ trackhouse.local_midnight('months.period_start_date') }} as period_start,
        {{ trackhouse.local_midnight('months.period_end_date') }} as period_end,
        months.period_start_date,
        months.period_end_date,
        cast(
            cast(cast(extract(year from months.period_start_date) as integer) as {{ dbt.type_string() }})
            || '-'
            || {{ trackhouse.zero_pad('cast(extract(month from months.period_start_date) as integer)') }}
            as {{ dbt.type_string() }}
        ) as calendar_year_month,
        cast(extract(year from months.period_start_date) as integer) as calendar_year,
        cast(registered.registered_users as bigint) as registered_users,
        cast(registered.activated_users as bigint) as activated_users,
        cast(coalesce(active_months.active_users, 0) as bigint) as active_users
    from months
    inner join registered on months.period_start_date = registered.period_start_date
    left join active_months on months.period_start_date = active_months.period_start_date
)

select * from final
