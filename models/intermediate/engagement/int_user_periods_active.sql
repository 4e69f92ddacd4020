{#
    One row per user, grain (day, week, month) and local period in which the
    user was active, up to the report end (the day after as_of), with the
    period in which the user signed up (date_joined, report time zone).
    The retention and lifecycle marts read it.

    A table rebuilt each run from the periods int_user_periods_accumulated
    keeps incrementally (one scan, no activity day read; a table, not a view,
    so that its readers and data tests do not each evaluate it again)
    (not cut at as_of); a period is reported when its first active date is
    before the report end, exactly the periods the user-dates before it make.
    The user's account and sign-up are joined here, so a new date_joined or
    account changes nothing stored.
#}
{{ config(materialized='table') }}

with

user_periods as (
    select * from {{ ref('trackhouse', 'int_user_periods_accumulated') }}
),

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

reported_periods as (
    select
        user_id,
        grain,
        period_start_date
    from user_periods
    where first_active_date < {{ trackhouse.report_end_date() }}
),

final as (
    select
        cast(reported_periods.user_id as {{ dbt.type_string() }}) as user_id,
        cast(reported_periods.grain as {{ dbt.type_string() }}) as grain,
        reported_periods.period_start_date,
        users.account_id,
        {{ trackhouse.period_start(
            'reported_periods.grain', trackhouse.report_date('users.joined_at')) }} as signup_period_start_date
    from reported_periods
    left join users
        on reported_periods.user_id = users.user_id
)

select * from final
