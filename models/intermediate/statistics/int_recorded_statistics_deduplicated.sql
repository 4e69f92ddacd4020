{#
    Recorded statistics (record_statistic, NDJSON `statistic` events): the latest
    recording of each key wins, as trackstats' record() overwrites its row.
    "Latest" is by the recording's own time (recorded_at), then by when it was
    received and its id, so the choice is deterministic. Dates after the as-of
    date wait, like computed statistics. A metric ref is unique across domains
    (statistics_by_date is unique on metric, period, date), so a recording whose
    ref is registered under another domain is left out (the singular test
    recorded_statistics_in_a_foreign_domain warns about it).
#}

with

recorded_statistics as (
    select * from {{ ref('trackhouse', 'stg_recorded_statistics') }}
),

registry as (
    select * from {{ ref('trackhouse', 'trackhouse_metrics') }}
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

registered as (
    select split.*
    from split
    left join registry
        on split.metric = registry.ref
    where registry.ref is null or registry.domain = split.domain
),

ranked as (
    select
        *,
        row_number() over (
            partition by domain, metric, period, statistic_date, object_type, object_id
            order by recorded_at desc, received_at desc, {{ trackhouse.byte_order('event_id') }} desc
        ) as recency
    from registered
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
