{#
    Account membership with validity, the table the query API reads to count a
    user for the account they belonged to at the time: int_account_memberships
    under a contract.
#}

with

memberships as (
    select * from {{ ref('trackhouse', 'int_account_memberships') }}
),

final as (
    select
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(stated_at as timestamp) as stated_at,
        cast(valid_from as timestamp) as valid_from,
        cast(valid_to as timestamp) as valid_to,
        cast(valid_from_date as date) as valid_from_date,
        cast(valid_through_date as date) as valid_through_date,
        is_current
    from memberships
)

select * from final
