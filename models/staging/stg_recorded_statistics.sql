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
        received_at
    from source
)

select * from renamed
