{#
    Lifecycle of active users per period, PostHog's definitions, for the whole
    site and per account (the user's current account_id). For each grain (day,
    week, month) and local period up to the one holding as_of:
      new           active, and signed up (date_joined) in this period
      returning     active in this period and in the previous one
      resurrecting  active in this period, not in the previous one, not new
      dormant       active in the previous period, not in this one
    A user is in exactly one of new / returning / resurrecting in each period
    they were active in. Counts are positive (PostHog draws dormant below
    zero). A status without users in a period has no row.
#}
with

user_periods as (
    select * from {{ ref('trackhouse', 'int_user_periods_active') }}
),

sequenced as (
    select
        *,
        lag(period_start_date) over (
            partition by user_id, grain order by period_start_date
        ) as previous_active_start_date,
        lead(period_start_date) over (
            partition by user_id, grain order by period_start_date
        ) as next_active_start_date,
        {{ trackhouse.add_periods('grain', 'period_start_date', '-1') }} as previous_period_start_date,
        {{ trackhouse.add_periods('grain', 'period_start_date', '1') }} as next_period_start_date
    from user_periods
),

statuses as (
    select
        user_id,
        account_id,
        grain,
        period_start_date,
        case
            when signup_period_start_date = period_start_date then 'new'
            when previous_active_start_date = previous_period_start_date then 'returning'
            else 'resurrecting'
        end as status
    from sequenced
    union all
    select
        user_id,
        account_id,
        grain,
        next_period_start_date as period_start_date,
        'dormant' as status
    from sequenced
    where
        (next_active_start_date is null or next_active_start_date <> next_period_start_date)
        and next_period_start_date < {{ trackhouse.report_end_date() }}
),

scoped as (
    select
        'site' as scope,
        cast(null as {{ dbt.type_string() }}) as account_id,
        grain,
        period_start_date,
        status,
        user_id
    from statuses
    union all
    select
        'account' as scope,
        account_id,
        grain,
        period_start_date,
        status,
        user_id
    from statuses
    where account_id is not null
),

counted as (
    select
        scope,
        account_id,
        grain,
        period_start_date,
        status,
        count(*) as users
    from scoped
    group by scope, account_id, grain, period_start_date, status
),

final as (
    select
        cast(scope as {{ dbt.type_string() }}) as scope,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(grain as {{ dbt.type_string() }}) as grain,
        period_start_date,
        case
            when {{ trackhouse.add_periods('grain', 'period_start_date', '1') }}
                < {{ trackhouse.report_end_date() }}
                then {{ trackhouse.add_periods('grain', 'period_start_date', '1') }}
            else {{ trackhouse.report_end_date() }}
        end as period_end_date,
        cast(status as {{ dbt.type_string() }}) as status,
        cast(users as bigint) as users
    from counted
)

select * from final
