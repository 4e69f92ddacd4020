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
        received_at,
        {# the batch that wrote the row, in commit order; 0 = written before it was numbered #}
        coalesce(load_sequence, 0) as load_sequence
    from source
)

select * from renamed
