with

source as (
    select * from {{ source('trackhouse_raw', 'statistics') }}
),

renamed as (
    select
        event_id,
        metric as metric_key,
        value,
        period,
        statistic_date,
        object_type,
        object_id,
        occurred_at as recorded_at,
        received_at,
        {# the batch that wrote the row, in commit order; 0 = written before it was numbered #}
        coalesce(load_sequence, 0) as load_sequence
    from source
)

select * from renamed
