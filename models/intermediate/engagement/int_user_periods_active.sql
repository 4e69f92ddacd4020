{#
    One row per user, grain (day, week, month) and local period in which the
    user was active, up to the report end (the day after as_of), with the
    period in which the user signed up (date_joined, report time zone).
    The retention and lifecycle marts read it.
#}
{{ config(materialized='table') }}

with

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_localized') }}
),

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

grains as (
    select 'day' as grain
    union all
    select 'week' as grain
    union all
    select 'month' as grain
),

reported_days as (
    select
        user_id,
        activity_date
    from activity_days
    where activity_date < {{ trackhouse.report_end_date() }}
),

user_periods as (
    select distinct
        reported_days.user_id,
        grains.grain,
        {{ trackhouse.period_start('grains.grain', 'reported_days.activity_date') }} as period_start_date
    from reported_days
    cross join grains
),

final as (
    select
        cast(user_periods.user_id as {{ dbt.type_string() }}) as user_id,
        cast(user_periods.grain as {{ dbt.type_string() }}) as grain,
        user_periods.period_start_date,
        users.account_id,
        {{ trackhouse.period_start(
            'user_periods.grain', trackhouse.report_date('users.joined_at')) }} as signup_period_start_date
    from user_periods
    left join users
        on user_periods.user_id = users.user_id
)

select * from final
