{#
    The user count statistic's input: one row per user with when they joined
    and the account they belonged to at that instant (account_memberships; a
    user's first account is theirs from the beginning), the object
    users.user_count is broken down by: a sign-up counts for the account the
    user signed up into, and stays there when they move later.
#}

with

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

memberships as (
    select * from {{ ref('trackhouse', 'account_memberships') }}
),

final as (
    select
        users.user_id,
        users.joined_at,
        memberships.account_id
    from users
    left join memberships
        on
            users.user_id = memberships.user_id
            and (memberships.valid_from is null or users.joined_at >= memberships.valid_from)
            and (memberships.valid_to is null or users.joined_at < memberships.valid_to)
)

select * from final
