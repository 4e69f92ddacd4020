{#
    The account dimension: one row per account (Segment groupId) named by a
    group call, record_account or a user's traits.account_id. Traits are the
    latest stated; the subscription starts at the latest stated
    subscription_start, else at the account's first group call (else, for an
    account only ever named in user traits, at the first such statement).
#}
with

account_traits as (
    select * from {{ ref('trackhouse', 'stg_account_traits') }}
),

user_traits as (
    select * from {{ ref('trackhouse', 'stg_user_traits') }}
),

first_statements as (
    select
        account_id,
        min(stated_at) as first_group_call_at
    from account_traits
    group by account_id
),

first_user_statements as (
    select
        account_id,
        min(stated_at) as first_named_at
    from user_traits
    where account_id is not null
    group by account_id
),

accounts as (
    select account_id from first_statements
    union
    select account_id from first_user_statements
),

start_ranked as (
    select
        account_id,
        subscription_start_at,
        row_number() over (
            partition by account_id order by stated_at desc, received_at desc, {{ trackhouse.byte_order('event_id') }} desc
        ) as recency
    from account_traits
    where subscription_start_at is not null
),

name_ranked as (
    select
        account_id,
        account_name,
        row_number() over (
            partition by account_id order by stated_at desc, received_at desc, {{ trackhouse.byte_order('event_id') }} desc
        ) as recency
    from account_traits
    where account_name is not null
),

final as (
    select
        accounts.account_id,
        name_ranked.account_name,
        coalesce(
            start_ranked.subscription_start_at,
            first_statements.first_group_call_at,
            first_user_statements.first_named_at
        ) as subscription_start_at,
        start_ranked.subscription_start_at is not null as is_subscription_start_stated
    from accounts
    left join first_statements
        on accounts.account_id = first_statements.account_id
    left join first_user_statements
        on accounts.account_id = first_user_statements.account_id
    left join start_ranked
        on accounts.account_id = start_ranked.account_id and start_ranked.recency = 1
    left join name_ranked
        on accounts.account_id = name_ranked.account_id and name_ranked.recency = 1
)

select * from final
