with

source as (
    select * from {{ source('trackhouse_raw', 'activity') }}
),

renamed as (
    select
        event_id,
        user_id,
        occurred_at as active_at,
        received_at,
        {# the batch that wrote the row, in commit order; 0 = written before it was numbered #}
        coalesce(load_sequence, 0) as load_sequence
    from source
)

select * from renamed
