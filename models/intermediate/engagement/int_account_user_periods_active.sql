{#
    One row per account, member, grain (day, week, month) and local period in
    which the user was active while they belonged to the account
    (account_memberships: a user-date counts for every account the user
    belonged to at some moment of that date), up to the report end, with the
    period of the user's sign-up. The lifecycle mart's account scope reads it:
    a user who moves keeps their past periods in the old account.
#}
{{ config(materialized='table') }}

with

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_localized') }}
),

memberships as (
    select * from {{ ref('trackhouse', 'account_memberships') }}
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

member_days as (
    select
        memberships.account_id,
        activity_days.user_id,
        activity_days.activity_date
    from activity_days
    inner join memberships
        on
            activity_days.user_id = memberships.user_id
            and (memberships.valid_from_date is null or activity_days.activity_date >= memberships.valid_from_date)
            and (
                memberships.valid_through_date is null
                or activity_days.activity_date <= memberships.valid_through_date
            )
    where activity_days.activity_date < {{ trackhouse.report_end_date() }}
),

member_periods as (
    select distinct
        member_days.account_id,
        member_days.user_id,
        grains.grain,
        {{ trackhouse.period_start('grains.grain', 'member_days.activity_date') }} as period_start_date
    from member_days
    cross join grains
),

final as (
    select
        cast(member_periods.account_id as {{ dbt.type_string() }}) as account_id,
        cast(member_periods.user_id as {{ dbt.type_string() }}) as user_id,
        cast(member_periods.grain as {{ dbt.type_string() }}) as grain,
        member_periods.period_start_date,
        {{ trackhouse.period_start(
            'member_periods.grain', trackhouse.report_date('users.joined_at')) }} as signup_period_start_date
    from member_periods
    left join users
        on member_periods.user_id = users.user_id
)

select * from final
