with

source as (
    select * from {{ source('trackhouse_raw', 'deletion_requests') }}
),

renamed as (
    select
        request_id,
        requested_at,
        id_count,
        linked_id_count,
        rows_deleted,
        rows_by_table
    from source
)

select * from renamed
