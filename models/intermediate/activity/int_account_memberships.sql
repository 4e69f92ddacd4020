{{ config(materialized='table') }}

{#
    Account membership with validity: one row per stretch of time a user
    belonged to one account. A membership is stated by a group call, by
    record_user(account_id=...) or by identify traits.account_id, at the
    statement's time (stated_at); it lasts until the user's next statement
    names another account (valid_to; null = current).

    The user's first membership is valid from the beginning (valid_from null):
    apps usually send the group call after the sign-up and first events, and
    that activity belongs to the user's first account. A later statement moves
    the user from its own time on, so the periods of the old account that are
    closed keep counting the user.

    Statements at the same instant: the latest written wins (received_at, then
    the event id in byte order), as for every other trait. Repeated statements
    of the same account are one membership.

    The activity marts count local dates (report time zone):
    valid_from_date / valid_through_date are the first and last local dates the
    membership touches, so a user-date counts for every account the user
    belonged to at some moment of that date (on the day of a move, for both).
#}

with

user_traits as (
    select * from {{ ref('trackhouse', 'stg_user_traits') }}
),

account_traits as (
    select * from {{ ref('trackhouse', 'stg_account_traits') }}
),

statements as (
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

{# Of the statements at one instant only the latest written counts. #}
instants as (
    select
        user_id,
        account_id,
        stated_at
    from (
        select
            user_id,
            account_id,
            stated_at,
            row_number() over (
                partition by user_id, stated_at
                order by received_at desc, {{ trackhouse.byte_order('event_id') }} desc
            ) as recency
        from statements
    ) as ranked
    where recency = 1
),

sequenced as (
    select
        user_id,
        account_id,
        stated_at,
        lag(account_id) over (partition by user_id order by stated_at) as previous_account_id
    from instants
),

{# A membership begins where the account differs from the one before. #}
changes as (
    select
        user_id,
        account_id,
        stated_at,
        previous_account_id is null as is_first
    from sequenced
    where previous_account_id is null or previous_account_id <> account_id
),

bounded as (
    select
        user_id,
        account_id,
        stated_at,
        case when is_first then null else stated_at end as valid_from,
        lead(stated_at) over (partition by user_id order by stated_at) as valid_to
    from changes
),

final as (
    select
        user_id,
        account_id,
        stated_at,
        valid_from,
        valid_to,
        {{ trackhouse.report_date('valid_from') }} as valid_from_date,
        {# the last local date with a moment of the membership: valid_to is excluded #}
        {{ trackhouse.report_date(dbt.dateadd('microsecond', -1, 'valid_to')) }} as valid_through_date,
        valid_to is null as is_current
    from bounded
)

select * from final
