with

source as (
    select * from {{ source('trackhouse_raw', 'events') }}
),

renamed as (
    select
        message_id as event_id,
        event_type,
        occurred_at,
        anonymous_id,
        user_id,
        source as source_name,
        line_number,
        received_at,
        {# the batch that wrote the row, in commit order; 0 = written before it was numbered #}
        coalesce(load_sequence, 0) as load_sequence
    from source
)

select * from renamed
