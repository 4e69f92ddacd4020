{#
    The account dimension the query API reads: int_accounts_resolved under a
    contract.
#}

with

accounts as (
    select * from {{ ref('trackhouse', 'int_accounts_resolved') }}
),

final as (
    select
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(account_name as {{ dbt.type_string() }}) as account_name,
        cast(subscription_start_at as timestamp) as subscription_start_at,
        is_subscription_start_stated
    from accounts
)

select * from final
