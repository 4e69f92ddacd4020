with

source as (
    select * from {{ source('trackhouse_raw', 'touchpoints') }}
),

renamed as (
    select
        event_id as touchpoint_id,
        anonymous_id,
        user_id,
        occurred_at as touched_at,
        url,
        referrer,
        user_agent,
        campaign as campaign_json,
        received_at,
        {# the batch that wrote the row, in commit order; 0 = written before it was numbered #}
        coalesce(load_sequence, 0) as load_sequence
    from source
)

select * from renamed
