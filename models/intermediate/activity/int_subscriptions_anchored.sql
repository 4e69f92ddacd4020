{#
    One row per subscription whose usage is reported: the whole site
    (account_id null: every user) and each account (its own users). The anchor
    is a local date in the report time zone; periods start at its local midnight.
    Whole site: var `subscription_start` (YYYY-MM-DD), default the date the
    first user joined. Account: the date of its subscription_start_at.
#}

with

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

accounts as (
    select * from {{ ref('trackhouse', 'int_accounts_resolved') }}
),

{# The whole site: the configured start, else the first join (no users, no row). #}
site as (
    {%- if var('subscription_start', none) %}
    select
        cast(null as {{ dbt.type_string() }}) as account_id,
        cast('{{ var("subscription_start") }}' as date) as subscription_start_date
    {%- else %}
        select
            cast(null as {{ dbt.type_string() }}) as account_id,
            min({{ trackhouse.report_date('joined_at') }}) as subscription_start_date
        from users
        having count(*) > 0
    {%- endif %}
),

account_subscriptions as (
    select
        account_id,
        {{ trackhouse.report_date('subscription_start_at') }} as subscription_start_date
    from accounts
),

unioned as (
    select * from site
    union all
    select * from account_subscriptions
),

final as (
    select
        account_id,
        {# a non-null join key for the site row: account ids are never empty #}
        coalesce(account_id, '') as subscription_key,
        subscription_start_date
    from unioned
)

select * from final
