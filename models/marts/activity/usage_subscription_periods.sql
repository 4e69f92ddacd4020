{#
    django-souvenirs' customer_{monthly,quarterly,yearly}_usage, for the whole
    site (account_id null: every user, with or without an account) and per
    account (its current members), each anchored at its own subscription start.
    Per period [start, end):
      registered_users = users with joined_at < end;
      activated_users  = those of them whose current is_active is true;
      active_users     = distinct users with activity in [start, end).
#}

with

periods as (
    select * from {{ ref('int_subscription_periods_generated') }}
),

subscriptions as (
    select * from {{ ref('int_subscriptions_anchored') }}
),

users as (
    select * from {{ ref('int_users_resolved') }}
),

activity_days as (
    select * from {{ ref('int_activity_days_localized') }}
),

{# Each user counts for the whole site and, when they have one, their account. #}
subscription_members as (
    select
        '' as subscription_key,
        user_id,
        is_active,
        {{ trackhouse.report_date('joined_at') }} as joined_date
    from users
    union all
    select
        account_id as subscription_key,
        user_id,
        is_active,
        {{ trackhouse.report_date('joined_at') }} as joined_date
    from users
    where account_id is not null
),

{# joined_at < local midnight of a date <=> the local join date is before it. #}
joins_by_date as (
    select
        subscription_key,
        joined_date,
        count(*) as joined_users,
        sum(case when is_active then 1 else 0 end) as joined_active_users
    from subscription_members
    group by 1, 2
),

registered as (
    select
        periods.subscription_key,
        periods.period_kind,
        periods.period_index,
        coalesce(sum(joins_by_date.joined_users), 0) as registered_users,
        coalesce(sum(joins_by_date.joined_active_users), 0) as activated_users
    from periods
    left join joins_by_date
        on
            periods.subscription_key = joins_by_date.subscription_key
            and joins_by_date.joined_date < periods.period_end_date
    group by 1, 2, 3
),

{# The subscription month each active day falls in; coarser kinds group months. #}
member_months as (
    select distinct
        subscription_members.subscription_key,
        activity_days.user_id,
        {{ trackhouse.months_between_clamped(
            'subscriptions.subscription_start_date', 'activity_days.activity_date') }}
            as month_offset
    from activity_days
    inner join subscription_members
        on activity_days.user_id = subscription_members.user_id
    inner join subscriptions
        on subscription_members.subscription_key = subscriptions.subscription_key
    where
        activity_days.activity_date >= subscriptions.subscription_start_date
        and activity_days.activity_date < {{ trackhouse.report_end_date() }}
),

period_kinds as (
    select distinct
        period_kind,
        months_per_period
    from periods
),

active as (
    select
        member_months.subscription_key,
        period_kinds.period_kind,
        cast(floor(member_months.month_offset / (1.0 * period_kinds.months_per_period)) as integer)
        + 1 as period_index,
        count(distinct member_months.user_id) as active_users
    from member_months
    cross join period_kinds
    group by 1, 2, 3
),

final as (
    select
        cast(periods.account_id as {{ dbt.type_string() }}) as account_id,
        cast(periods.period_kind as {{ dbt.type_string() }}) as period_kind,
        cast(periods.period_index as integer) as period_index,
        {{ trackhouse.local_midnight('periods.period_start_date') }} as period_start,
        {{ trackhouse.local_midnight('periods.period_end_date') }} as period_end,
        periods.period_start_date,
        periods.period_end_date,
        cast(periods.label as {{ dbt.type_string() }}) as label,
        cast(registered.registered_users as bigint) as registered_users,
        cast(registered.activated_users as bigint) as activated_users,
        cast(coalesce(active.active_users, 0) as bigint) as active_users
    from periods
    inner join registered
        on
            periods.subscription_key = registered.subscription_key
            and periods.period_kind = registered.period_kind
            and periods.period_index = registered.period_index
    left join active
        on
            periods.subscription_key = active.subscription_key
            and periods.period_kind = active.period_kind
            and periods.period_index = active.period_index
)

select * from final
