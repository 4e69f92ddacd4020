{#
    django-souvenirs' customer_{monthly,quarterly,yearly}_usage, for the whole
    site (account_id null: every user, with or without an account) and per
    account, each anchored at its own subscription start. An account counts a
    user for the time they belonged to it (int_account_memberships): a user
    who moves to another account stays in the old account's closed periods.
    Per period [start, end):
      registered_users = users with joined_at < end (an account: those who
                         belonged to it just before end);
      activated_users  = those of them whose current is_active is true;
      active_users     = distinct users with activity in [start, end) (an
                         account: on local dates on which they belonged to it).
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

memberships as (
    select * from {{ ref('trackhouse', 'int_account_memberships') }}
),

{# Each user counts for the whole site (always) and for each account while
   they belonged to it (int_account_memberships; null bounds = unbounded). #}
subscription_members as (
    select
        '' as subscription_key,
        user_id,
        is_active,
        {{ trackhouse.report_date('joined_at') }} as joined_date,
        cast(null as timestamp) as valid_from,
        cast(null as timestamp) as valid_to,
        cast(null as date) as valid_from_date,
        cast(null as date) as valid_through_date
    from users
    union all
    select
        memberships.account_id as subscription_key,
        memberships.user_id,
        users.is_active,
        {{ trackhouse.report_date('users.joined_at') }} as joined_date,
        memberships.valid_from,
        memberships.valid_to,
        memberships.valid_from_date,
        memberships.valid_through_date
    from memberships
    inner join users
        on memberships.user_id = users.user_id
),

periods_ended as (
    select
        periods.*,
        {{ trackhouse.local_midnight('periods.period_end_date') }} as period_end_at
    from periods
),

{# The site: joined_at < local midnight of a date <=> the local join date is before it. #}
site_joins_by_date as (
    select
        joined_date,
        count(*) as joined_users,
        sum(case when is_active then 1 else 0 end) as joined_active_users
    from subscription_members
    where subscription_key = ''
    group by 1
),

site_registered as (
    select
        periods.subscription_key,
        periods.period_kind,
        periods.period_index,
        coalesce(sum(site_joins_by_date.joined_users), 0) as registered_users,
        coalesce(sum(site_joins_by_date.joined_active_users), 0) as activated_users
    from periods
    left join site_joins_by_date
        on site_joins_by_date.joined_date < periods.period_end_date
    where periods.subscription_key = ''
    group by 1, 2, 3
),

{# An account at a period's end e: the users who belonged to it just before e
   (membership from before e, not ended before e) and joined before e. #}
account_registered as (
    select
        periods.subscription_key,
        periods.period_kind,
        periods.period_index,
        count(distinct members.user_id) as registered_users,
        count(distinct case when members.is_active then members.user_id end) as activated_users
    from periods_ended as periods
    left join subscription_members as members
        on
            periods.subscription_key = members.subscription_key
            and members.joined_date < periods.period_end_date
            and (members.valid_from is null or members.valid_from < periods.period_end_at)
            and (members.valid_to is null or members.valid_to >= periods.period_end_at)
    where periods.subscription_key <> ''
    group by 1, 2, 3
),

registered as (
    select * from site_registered
    union all
    select * from account_registered
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

{# A cut period counts the users active in [start, report end): its whole
   count minus the members whose only member-days in it came after as_of.
   The work grows with the activity after as_of (usually none). #}
late_days as (
    select
        user_id,
        activity_date
    from activity_days
    where
        activity_date >= {{ trackhouse.report_end_date() }}
        and activity_date < (select max(full_period_end_date) from cut_periods)
),

early_days as (
    select
        user_id,
        activity_date
    from activity_days
    where
        activity_date >= (select min(period_start_date) from cut_periods)
        and activity_date < {{ trackhouse.report_end_date() }}
        and user_id in (select user_id from late_days)
),

late_member_days as (
    select
        members.subscription_key,
        late_days.user_id,
        late_days.activity_date
    from late_days
    inner join subscription_members as members
        on
            late_days.user_id = members.user_id
            and (members.valid_from_date is null or late_days.activity_date >= members.valid_from_date)
            and (members.valid_through_date is null or late_days.activity_date <= members.valid_through_date)
),

early_member_days as (
    select
        members.subscription_key,
        early_days.user_id,
        early_days.activity_date
    from early_days
    inner join subscription_members as members
        on
            early_days.user_id = members.user_id
            and (members.valid_from_date is null or early_days.activity_date >= members.valid_from_date)
            and (members.valid_through_date is null or early_days.activity_date <= members.valid_through_date)
),

late_only as (
    select
        cut_periods.subscription_key,
        cut_periods.period_kind,
        cut_periods.period_index,
        count(distinct late_member_days.user_id) as late_only_users
    from cut_periods
    inner join late_member_days
        on
            cut_periods.subscription_key = late_member_days.subscription_key
            and late_member_days.activity_date < cut_periods.full_period_end_date
    where
        not exists (
            select 1
            from early_member_days
            where
                early_member_days.subscription_key = cut_periods.subscription_key
                and early_member_days.user_id = late_member_days.user_id
                and early_member_days.activity_date >= cut_periods.period_start_date
        )
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
