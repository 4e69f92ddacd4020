{#
    The user dimension the query API reads: int_users_resolved under a
    contract, so that the API depends on a mart, not on an intermediate model.
#}

with

users as (
    select * from {{ ref('trackhouse', 'int_users_resolved') }}
),

final as (
    select
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(joined_at as timestamp) as joined_at,
        is_joined_at_stated,
        is_active,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(first_seen_at as timestamp) as first_seen_at
    from users
)

select * from final
