with

source as (
    select * from {{ source('trackhouse_raw', 'identity_links') }}
),

renamed as (
    select
        event_id,
        anonymous_id,
        user_id,
        link_type,
        occurred_at as linked_at,
        received_at
    from source
)

select * from renamed
