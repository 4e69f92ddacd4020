with

source as (
    select * from {{ source('trackhouse_raw', 'accounts') }}
),

renamed as (
    select
        event_id,
        account_id,
        user_id,
        subscription_start as subscription_start_at,
        name as account_name,
        occurred_at as stated_at,
        received_at
    from source
)

select * from renamed
