with

source as (
    select * from {{ source('trackhouse_raw', 'activity') }}
),

renamed as (
    select
        event_id,
        user_id,
        occurred_at as active_at,
        received_at
    from source
)

select * from renamed
