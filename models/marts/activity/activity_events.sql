{{ config(materialized='view') }}

{#
    Every activity event (user and time only), for the few questions that
    activity_hourly cannot answer alone: whether a user was active inside part
    of an hour when their first and last event of that hour both fall outside
    it. The query API reads it for those edge hours only. A view: no copy of
    the raw table, and only these columns are exposed to the reader role.
#}

with

activity as (
    select * from {{ ref('trackhouse', 'stg_activity_events') }}
),

final as (
    select
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(active_at as timestamp) as active_at
    from activity
)

select * from final
