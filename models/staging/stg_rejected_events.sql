with

source as (
    select * from {{ source('trackhouse_raw', 'rejected') }}
),

renamed as (
    select
        rejected_id,
        source as source_name,
        line_number,
        reason,
        payload,
        received_at
    from source
)

select * from renamed
