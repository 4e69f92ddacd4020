{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='subscription_key',
        on_schema_change='fail',
        pre_hook="{{ trackhouse.reset_after_deletions() }}",
    )
}}

{#
    Distinct active members per subscription (the whole site, each account)
    per period kind (month, quarter, year) per whole period from the anchor:
    what usage_subscription_periods reports, before it cuts the last period at
    the report end. Not cut here, so nothing in it depends on as_of. Only
    periods with activity have a row, and each subscription its first month.

    Incremental, without reading all activity again:
      - a subscription is counted again from all its members' user-dates when
        it is new, its anchor moved, its members changed (a fingerprint of the
        sorted member ids), or the user-dates were rebuilt (a full refresh of
        them or a new report time zone: none of their rows is as old as what
        was counted);
      - every other subscription adds, to each period, the members whose
        user-dates in that period are all new (first_built_at after the
        previous build's counted_through): they were not counted there before.
        Its members are the same as at the previous build (same fingerprint),
        and user-dates never disappear, so this equals a full refresh.
    Each run returns every subscription's rows; delete+insert on
    subscription_key replaces them.
#}

{# The user-dates are read with ref() where they are used, not through one
   import CTE: DuckDB materializes a CTE used twice (here: all of them). #}

with

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

subscriptions as (
    select * from {{ ref('trackhouse', 'int_subscriptions_anchored') }}
),

previous_counts as (
    {% if is_incremental() %}
        select * from {{ this }}
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as subscription_key,
            cast(null as {{ dbt.type_string() }}) as period_kind,
            cast(null as integer) as period_index,
            cast(null as bigint) as active_users,
            cast(null as date) as subscription_start_date,
            cast(null as {{ dbt.type_string() }}) as members_fingerprint,
            cast(null as timestamp) as counted_through
        from subscriptions
        where false
    {% endif %}
),

period_kinds as (
    select
        'month' as period_kind,
        1 as months_per_period
    union all
    select
        'quarter' as period_kind,
        3 as months_per_period
    union all
    select
        'year' as period_kind,
        12 as months_per_period
),

{# Each user counts for the whole site and, when they have one, their account. #}
members as (
    select
        '' as subscription_key,
        user_id
    from users
    union all
    select
        account_id as subscription_key,
        user_id
    from users
    where account_id is not null
),

{# The site counts everyone, whoever they are: only accounts need a fingerprint. #}
account_fingerprints as (
    select
        subscription_key,
        {{ dbt.hash(dbt.listagg('user_id', "','", 'order by user_id')) }} as members_fingerprint
    from members
    where subscription_key <> ''
    group by 1
),

subscription_states as (
    select
        subscriptions.subscription_key,
        subscriptions.subscription_start_date,
        coalesce(account_fingerprints.members_fingerprint, '') as members_fingerprint
    from subscriptions
    left join account_fingerprints
        on subscriptions.subscription_key = account_fingerprints.subscription_key
),

previous_build as (
    select max(counted_through) as counted_through
    from previous_counts
),

previous_states as (
    select distinct
        subscription_key,
        subscription_start_date,
        members_fingerprint
    from previous_counts
),

changes as (
    select
        min(first_built_at) as earliest_built_at,
        max(first_built_at) as latest_built_at
    from {{ ref('trackhouse', 'int_activity_days_accumulated') }}
),

{# A subscription is counted again from all its members' user-dates when it
   is new, its anchor moved, its members changed, or the user-dates were
   rebuilt (then there is nothing to add to). #}
subscription_plans as (
    select
        states.subscription_key,
        states.subscription_start_date,
        coalesce(
            previous.subscription_key is null
            or previous.subscription_start_date <> states.subscription_start_date
            or previous.members_fingerprint <> states.members_fingerprint
            or previous_build.counted_through is null
            or changes.earliest_built_at > previous_build.counted_through,
            true
        ) as is_recounted
    from subscription_states as states
    cross join previous_build
    cross join changes
    left join previous_states as previous
        on states.subscription_key = previous.subscription_key
),

{% if is_incremental() %}

    new_days as (
        select user_id
        from {{ ref('trackhouse', 'int_activity_days_accumulated') }}
        where first_built_at > (select counted_through from previous_build)
    ),

    {# the users whose user-dates are read: those with new ones, and the members
       of the subscriptions counted again #}
    changed_users as (
        select user_id from new_days
        union
        select members.user_id
        from members
        inner join subscription_plans
            on members.subscription_key = subscription_plans.subscription_key
        where subscription_plans.is_recounted
    ),

{% endif %}

{# A first build counts everyone: no need to look the users up. #}
changed_user_days as (
    select
        user_id,
        activity_date,
        coalesce(first_built_at > (select counted_through from previous_build), true) as is_new
    from {{ ref('trackhouse', 'int_activity_days_accumulated') }}
    {% if is_incremental() %}
        where user_id in (select user_id from changed_users)
    {% endif %}
),

{# For a subscription counted again every user-date is new. #}
member_months as (
    select
        plans.subscription_key,
        changed_user_days.user_id,
        {{ trackhouse.months_between_clamped(
            'plans.subscription_start_date', 'changed_user_days.activity_date') }}
            as month_offset,
        bool_and(changed_user_days.is_new or plans.is_recounted) as is_all_new
    from changed_user_days
    inner join members
        on changed_user_days.user_id = members.user_id
    inner join subscription_plans as plans
        on members.subscription_key = plans.subscription_key
    where changed_user_days.activity_date >= plans.subscription_start_date
    group by 1, 2, 3
),

{# A member adds to a period when all their user-dates in it are new: they
   were not counted there before. member_months has one row per member and
   month already; quarters and years group its months. #}
increments as (
    select
        subscription_key,
        'month' as period_kind,
        month_offset + 1 as period_index,
        count(*) as added_users
    from member_months
    where is_all_new
    group by 1, 2, 3
    union all
    select
        subscription_key,
        period_kind,
        period_index,
        count(*) as added_users
    from (
        select
            member_months.subscription_key,
            member_months.user_id,
            period_kinds.period_kind,
            cast(floor(
                member_months.month_offset / (1.0 * period_kinds.months_per_period)
            ) as integer) + 1 as period_index,
            bool_and(member_months.is_all_new) as is_new_to_period
        from member_months
        inner join period_kinds
            on period_kinds.months_per_period > 1
        group by 1, 2, 3, 4
    ) as member_periods
    where is_new_to_period
    group by 1, 2, 3
),

kept_counts as (
    select
        previous_counts.subscription_key,
        previous_counts.period_kind,
        previous_counts.period_index,
        previous_counts.active_users
    from previous_counts
    inner join subscription_plans
        on previous_counts.subscription_key = subscription_plans.subscription_key
    where not subscription_plans.is_recounted
),

{# Every subscription has a row (its first month), so that delete+insert on
   subscription_key also replaces the rows of one left without activity. #}
first_months as (
    select
        subscription_key,
        'month' as period_kind,
        1 as period_index,
        0 as active_users
    from subscription_states
),

counts as (
    select
        subscription_key,
        period_kind,
        period_index,
        sum(active_users) as active_users
    from (
        select * from kept_counts
        union all
        select
            subscription_key,
            period_kind,
            period_index,
            added_users as active_users
        from increments
        union all
        select * from first_months
    ) as all_counts
    group by 1, 2, 3
),

final as (
    select
        cast(counts.subscription_key as {{ dbt.type_string() }}) as subscription_key,
        cast(counts.period_kind as {{ dbt.type_string() }}) as period_kind,
        cast(counts.period_index as integer) as period_index,
        cast(counts.active_users as bigint) as active_users,
        subscription_states.subscription_start_date,
        cast(subscription_states.members_fingerprint as {{ dbt.type_string() }}) as members_fingerprint,
        changes.latest_built_at as counted_through
    from counts
    inner join subscription_states
        on counts.subscription_key = subscription_states.subscription_key
    cross join changes
)

select * from final
