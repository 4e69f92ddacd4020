{#
    Retention: users grouped by the week (ISO, from Monday) or month in which
    they signed up (date_joined, report time zone), and for each period since
    (0 = the sign-up period itself) how many of them were active and what share
    that is. One row per grain, cohort and period index, from the sign-up
    period to the one holding as_of (cut there: is_complete false).
#}
with

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

user_periods as (
    select * from {{ ref('trackhouse', 'int_user_periods_active') }}
),

grains as (
    select 'week' as grain
    union all
    select 'month' as grain
),

members as (
    select
        users.user_id,
        grains.grain,
        {{ trackhouse.period_start('grains.grain', trackhouse.report_date('users.joined_at')) }}
            as cohort_start_date
    from users
    cross join grains
    where {{ trackhouse.report_date('users.joined_at') }} < {{ trackhouse.report_end_date() }}
),

cohort_sizes as (
    select
        grain,
        cohort_start_date,
        count(*) as cohort_users,
        {{ trackhouse.periods_between(
            'grain', 'cohort_start_date',
            trackhouse.period_start('grain', trackhouse.as_of_date())) }} as last_period_index
    from members
    group by grain, cohort_start_date
),

grid as (
    select
        grain,
        cohort_start_date,
        cohort_users,
        {{ trackhouse.expand_series(0, 'last_period_index') }} as period_index
    from cohort_sizes
),

retained as (
    select
        members.grain,
        members.cohort_start_date,
        {{ trackhouse.periods_between(
            'members.grain', 'members.cohort_start_date', 'user_periods.period_start_date') }}
            as period_index,
        count(*) as active_users
    from members
    inner join user_periods
        on
            members.user_id = user_periods.user_id
            and members.grain = user_periods.grain
            and user_periods.period_start_date >= members.cohort_start_date
    group by
        members.grain,
        members.cohort_start_date,
        user_periods.period_start_date
),

bounded as (
    select
        grid.grain,
        grid.cohort_start_date,
        cast(grid.period_index as integer) as period_index,
        {{ trackhouse.add_periods('grid.grain', 'grid.cohort_start_date', 'grid.period_index') }}
            as period_start_date,
        {{ trackhouse.add_periods('grid.grain', 'grid.cohort_start_date', 'grid.period_index + 1') }}
            as full_period_end_date,
        grid.cohort_users,
        coalesce(retained.active_users, 0) as active_users
    from grid
    left join retained
        on
            grid.grain = retained.grain
            and grid.cohort_start_date = retained.cohort_start_date
            and grid.period_index = retained.period_index
),

final as (
    select
        cast(grain as {{ dbt.type_string() }}) as grain,
        cohort_start_date,
        period_index,
        period_start_date,
        case
            when full_period_end_date < {{ trackhouse.report_end_date() }} then full_period_end_date
            else {{ trackhouse.report_end_date() }}
        end as period_end_date,
        full_period_end_date <= {{ trackhouse.report_end_date() }} as is_complete,
        cast(cohort_users as bigint) as cohort_users,
        cast(active_users as bigint) as active_users,
        cast(
            {{ trackhouse.round_double('cast(active_users as ' ~ trackhouse.double_type() ~ ') / cohort_users', 6) }}
            as numeric(9, 6)
        ) as retention
    from bounded
)

select * from final
