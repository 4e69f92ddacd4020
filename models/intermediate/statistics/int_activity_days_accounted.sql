{#
    The active users statistic's input: one row per user per local date with
    activity (int_activity_days_localized, the same days the usage marts count,
    also in :30/:45 time zones) with the user's current account, the object
    activity.active_users is broken down by. A user without an account has a
    null account_id: counted by date, not by account.
#}

with

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_localized') }}
),

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

final as (
    select
        activity_days.user_id,
        activity_days.activity_date,
        users.account_id
    from activity_days
    left join users
        on activity_days.user_id = users.user_id
)

select * from final
