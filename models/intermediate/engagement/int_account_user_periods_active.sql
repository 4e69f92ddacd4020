{#
    One row per account, member, grain (day, week, month) and local period in
    which the user was active while they belonged to the account
    (account_memberships: a user-date counts for every account the user
    belonged to at some moment of that date), up to the report end, with the
    period of the user's sign-up. The lifecycle mart's account scope reads it:
    a user who moves keeps their past periods in the old account.

    A table rebuilt each run (its readers and data tests read it once), in two
    parts that never share a user:
      - a user with one membership (valid from the beginning, still current:
        valid_from_date and valid_through_date null) belongs to it on every
        date, so their periods are their site periods (int_user_periods_active,
        kept incrementally) in that account;
      - a user who moved (every membership of theirs is bounded) is counted
        from their user-dates and each membership's dates, as before.
    Few users move, so a build reads the user-dates of those few only.
#}
{{ config(materialized='table') }}

with

user_periods as (
    select * from {{ ref('trackhouse', 'int_user_periods_active') }}
),

memberships as (
    select * from {{ ref('trackhouse', 'account_memberships') }}
),

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

grains as (
    {{ trackhouse.engagement_grains() }}
),

sole_members as (
    select
        account_id,
        user_id
    from memberships
    where valid_from_date is null and valid_through_date is null
),

moved_memberships as (
    select
        account_id,
        user_id,
        valid_from_date,
        valid_through_date
    from memberships
    where valid_from_date is not null or valid_through_date is not null
),

sole_member_periods as (
    select
        sole_members.account_id,
        user_periods.user_id,
        user_periods.grain,
        user_periods.period_start_date,
        user_periods.signup_period_start_date
    from user_periods
    inner join sole_members
        on user_periods.user_id = sole_members.user_id
),

moved_member_days as (
    select
        moved_memberships.account_id,
        activity_days.user_id,
        activity_days.activity_date
    from {{ ref('trackhouse', 'int_activity_days_localized') }} as activity_days
    inner join moved_memberships
        on
            activity_days.user_id = moved_memberships.user_id
            and (
                moved_memberships.valid_from_date is null
                or activity_days.activity_date >= moved_memberships.valid_from_date
            )
            and (
                moved_memberships.valid_through_date is null
                or activity_days.activity_date <= moved_memberships.valid_through_date
            )
    where activity_days.activity_date < {{ trackhouse.report_end_date() }}
),

moved_member_periods as (
    select distinct
        moved_member_days.account_id,
        moved_member_days.user_id,
        grains.grain,
        {{ trackhouse.period_start('grains.grain', 'moved_member_days.activity_date') }} as period_start_date
    from moved_member_days
    cross join grains
),

moved_member_periods_signed_up as (
    select
        moved_member_periods.account_id,
        moved_member_periods.user_id,
        moved_member_periods.grain,
        moved_member_periods.period_start_date,
        {{ trackhouse.period_start(
            'moved_member_periods.grain', trackhouse.report_date('users.joined_at')) }} as signup_period_start_date
    from moved_member_periods
    left join users
        on moved_member_periods.user_id = users.user_id
),

member_periods as (
    select * from sole_member_periods
    union all
    select * from moved_member_periods_signed_up
),

final as (
    select
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(grain as {{ dbt.type_string() }}) as grain,
        period_start_date,
        signup_period_start_date
    from member_periods
)

select * from final
