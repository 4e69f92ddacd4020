with

source as (
    select * from {{ source('trackhouse_raw', 'conversion_events') }}
),

renamed as (
    select
        event_id,
        conversion_id,
        event,
        anonymous_id,
        user_id,
        occurred_at,
        value,
        currency,
        is_confirmed,
        is_active,
        custom_data as custom_data_json,
        source_object,
        received_at,
        {# the batch that wrote the row, in commit order; 0 = written before it was numbered #}
        coalesce(load_sequence, 0) as load_sequence
    from source
)

select * from renamed
