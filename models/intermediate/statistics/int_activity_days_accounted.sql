{#
    The active users statistic's input: one row per user per local date with
    activity (int_activity_days_localized, the same days the usage marts count,
    also in :30/:45 time zones) per account the user belonged to on that date
    (account_memberships: on the day of a move, both), the object
    activity.active_users is broken down by. A user-date without an account
    has a null account_id: counted by date, not by account.
#}

with

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_localized') }}
),

memberships as (
    select * from {{ ref('trackhouse', 'account_memberships') }}
),

final as (
    select distinct
        activity_days.user_id,
        activity_days.activity_date,
        memberships.account_id
    from activity_days
    left join memberships
        on
            activity_days.user_id = memberships.user_id
            and (memberships.valid_from_date is null or activity_days.activity_date >= memberships.valid_from_date)
            and (
                memberships.valid_through_date is null
                or activity_days.activity_date <= memberships.valid_through_date
            )
)

select * from final
