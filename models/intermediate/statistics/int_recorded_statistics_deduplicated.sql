{#
    Recorded statistics (record_statistic, NDJSON `statistic` events): the latest
    recording of each key wins, as trackstats' record() overwrites its row.
    "Latest" is by the recording's own time (recorded_at), then by when it was
    received and its id, so the choice is deterministic. Dates after the as-of
    date wait, like computed statistics.
#}

with

recorded_statistics as (
    select * from {{ ref('stg_recorded_statistics') }}
),

split as (
    select
        {{ dbt.split_part('metric_key', "'.'", 1) }} as domain,
        {{ dbt.split_part('metric_key', "'.'", 2) }} as metric,
        period,
        statistic_date,
        object_type,
        object_id,
        value,
        recorded_at,
        received_at,
        event_id
    from recorded_statistics
    where statistic_date <= {{ trackhouse.as_of_date() }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by domain, metric, period, statistic_date, object_type, object_id
            order by recorded_at desc, received_at desc, event_id desc
        ) as recency
    from split
),

final as (
    select
        domain,
        metric,
        period,
        statistic_date,
        object_type,
        object_id,
        cast(value as numeric(38, 6)) as value,
        recorded_at,
        event_id
    from ranked
    where recency = 1
)

select * from final
