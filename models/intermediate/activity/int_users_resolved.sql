{{ config(materialized='table') }}

{#
    The user dimension: one row per user id ever seen, each trait being the
    latest value stated for it (null = not stated), like the seed's User row.
    A user without a stated created_at joined when trackhouse first saw them.
    A table: the usage marts, the statistics marts and the query API read it.
#}

with

user_traits as (
    select * from {{ ref('trackhouse', 'stg_user_traits') }}
),

account_traits as (
    select * from {{ ref('trackhouse', 'stg_account_traits') }}
),

activity_hourly as (
    select * from {{ ref('trackhouse', 'activity_hourly') }}
),

{# Every event that carries a user id is an activity of that user, so the first
   activity is the first sighting in any event; activity_hourly has it per hour
   (first_active_at) in a quarter of the rows of the raw events. API calls that
   are not activity (record_user, record_account) are the trait statements. #}
sightings as (
    select
        user_id,
        first_active_at as seen_at
    from activity_hourly
    union all
    select
        user_id,
        stated_at as seen_at
    from user_traits
    union all
    select
        user_id,
        stated_at as seen_at
    from account_traits
    where user_id is not null
),

first_seen as (
    select
        user_id,
        min(seen_at) as first_seen_at
    from sightings
    group by user_id
),

{# Ties on stated_at go to the later write, then the higher event id: deterministic. #}
joined_ranked as (
    select
        user_id,
        joined_at,
        row_number() over (
            partition by user_id order by stated_at desc, received_at desc, {{ trackhouse.byte_order('event_id') }} desc
        ) as recency
    from user_traits
    where joined_at is not null
),

active_ranked as (
    select
        user_id,
        is_active,
        row_number() over (
            partition by user_id order by stated_at desc, received_at desc, {{ trackhouse.byte_order('event_id') }} desc
        ) as recency
    from user_traits
    where is_active is not null
),

{# Membership is stated by identify traits.account_id / record_user(account_id=...)
   and by group calls; the latest statement from either wins. #}
memberships as (
    select
        user_id,
        account_id,
        stated_at,
        received_at,
        event_id
    from user_traits
    where account_id is not null
    union all
    select
        user_id,
        account_id,
        stated_at,
        received_at,
        event_id
    from account_traits
    where user_id is not null
),

membership_ranked as (
    select
        user_id,
        account_id,
        row_number() over (
            partition by user_id order by stated_at desc, received_at desc, {{ trackhouse.byte_order('event_id') }} desc
        ) as recency
    from memberships
),

final as (
    select
        first_seen.user_id,
        coalesce(joined_ranked.joined_at, first_seen.first_seen_at) as joined_at,
        joined_ranked.joined_at is not null as is_joined_at_stated,
        coalesce(active_ranked.is_active, true) as is_active,
        membership_ranked.account_id,
        first_seen.first_seen_at
    from first_seen
    left join joined_ranked
        on first_seen.user_id = joined_ranked.user_id and joined_ranked.recency = 1
    left join active_ranked
        on first_seen.user_id = active_ranked.user_id and active_ranked.recency = 1
    left join membership_ranked
        on first_seen.user_id = membership_ranked.user_id and membership_ranked.recency = 1
)

select * from final
