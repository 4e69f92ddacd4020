{#
    django-souvenirs' customer_{monthly,quarterly,yearly}_usage, for the whole
    site (account_id null: every user, with or without an account) and per
    account (its current members), each anchored at its own subscription start.
    Per period [start, end):
      registered_users = users with joined_at < end;
      activated_users  = those of them whose current is_active is true;
      active_users     = distinct users with activity in [start, end).
    The active members of whole periods come from
    int_subscription_periods_counted, kept incrementally. A period cut at the
    report end is that count minus the members whose only activity in it came
    after as_of: the work grows with the activity after as_of (usually none).
#}

with

periods as (
    select * from {{ ref('trackhouse', 'int_subscription_periods_generated') }}
),

counted as (
    select * from {{ ref('trackhouse', 'int_subscription_periods_counted') }}
),

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_localized') }}
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

{# -- the periods cut at the report end (the current ones) -- #}

cut_periods as (
    select
        subscription_key,
        period_kind,
        period_index,
        period_start_date,
        full_period_end_date
    from periods
    where period_end_date < full_period_end_date
),

{{ trackhouse.late_only_users(
    'cut_periods', 'activity_days', ['subscription_key', 'period_kind', 'period_index'],
    members='subscription_members') }},

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
        cast(
            coalesce(counted.active_users, 0) - coalesce(late_only.late_only_users, 0)
            as bigint
        ) as active_users
    from periods
    inner join registered
        on
            periods.subscription_key = registered.subscription_key
            and periods.period_kind = registered.period_kind
            and periods.period_index = registered.period_index
    left join counted
        on
            periods.subscription_key = counted.subscription_key
            and periods.period_kind = counted.period_kind
            and periods.period_index = counted.period_index
    left join late_only
        on
            periods.subscription_key = late_only.subscription_key
            and periods.period_kind = late_only.period_kind
            and periods.period_index = late_only.period_index
)

select * from final
