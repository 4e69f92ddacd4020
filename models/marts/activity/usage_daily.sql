{#
    django-souvenirs' daily_usage for the whole site: one row per local day from
    the site's subscription start to as_of, labelled with the subscription
    month, quarter and year the day falls in. registered_users and
    activated_users are as of the day's end. Per account, the query API's
    daily_usage(account_id=...) computes the same on demand: a table of
    accounts x days would grow with both and is rarely read.
#}

with

subscriptions as (
    select * from {{ ref('trackhouse', 'int_subscriptions_anchored') }}
    where account_id is null
),

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

{# active_users' day rows: the same local days, kept incrementally #}
active_days as (
    select
        period_start_date as usage_date,
        active_users
    from {{ ref('trackhouse', 'active_users') }}
    where grain = 'day'
),

day_offsets as (
    select
        subscription_start_date,
        {{ trackhouse.expand_series(
            0, dbt.datediff('subscription_start_date', trackhouse.as_of_date(), 'day')) }}
            as day_offset
    from subscriptions
),

days as (
    select
        usage_date,
        {{ trackhouse.months_between_clamped('subscription_start_date', 'usage_date') }}
            as month_offset,
        {{ trackhouse.local_midnight('usage_date') }} as period_start,
        {{ trackhouse.local_midnight(dbt.dateadd('day', 1, 'usage_date')) }} as period_end
    from (
        select
            subscription_start_date,
            cast({{ dbt.dateadd('day', 'day_offset', 'subscription_start_date') }} as date)
                as usage_date
        from day_offsets
    ) as dated
),

{# Joins before the subscription start count from its first day on: a running sum. #}
joins_by_day as (
    select
        case
            when joined_date < subscriptions.subscription_start_date
                then subscriptions.subscription_start_date
            else joined_date
        end as usage_date,
        count(*) as joined_users,
        sum(case when is_active then 1 else 0 end) as joined_active_users
    from (
        select
            is_active,
            {{ trackhouse.report_date('joined_at') }} as joined_date
        from users
    ) as members
    cross join subscriptions
    group by 1
),

final as (
    select
        days.usage_date,
        days.period_start,
        days.period_end,
        cast({{ trackhouse.subscription_label('days.month_offset', "'month'") }} as {{ dbt.type_string() }})
            as month_label,
        cast({{ trackhouse.subscription_label('days.month_offset', "'quarter'") }} as {{ dbt.type_string() }})
            as quarter_label,
        cast({{ trackhouse.subscription_label('days.month_offset', "'year'") }} as {{ dbt.type_string() }})
            as year_label,
        cast(sum(coalesce(joins_by_day.joined_users, 0)) over (
            order by days.usage_date rows between unbounded preceding and current row
        ) as bigint) as registered_users,
        cast(sum(coalesce(joins_by_day.joined_active_users, 0)) over (
            order by days.usage_date rows between unbounded preceding and current row
        ) as bigint) as activated_users,
        cast(coalesce(active_days.active_users, 0) as bigint) as active_users
    from days
    left join joins_by_day on days.usage_date = joins_by_day.usage_date
    left join active_days on days.usage_date = active_days.usage_date
)

select * from final
