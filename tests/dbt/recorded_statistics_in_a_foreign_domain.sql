{{ config(severity='warn') }}

{#
    Recorded statistics whose metric ref is registered under another domain are
    left out of the statistics marts (a ref is unique across domains): record
    them under the registered domain, or give your metric another ref.
#}

with

recorded as (
    select
        event_id,
        metric_key,
        {{ dbt.split_part('metric_key', "'.'", 1) }} as domain,
        {{ dbt.split_part('metric_key', "'.'", 2) }} as metric
    from {{ ref('trackhouse', 'stg_recorded_statistics') }}
),

registry as (
    select * from {{ ref('trackhouse', 'trackhouse_metrics') }}
)

select
    recorded.event_id,
    recorded.metric_key,
    registry.domain as registered_domain
from recorded
inner join registry
    on recorded.metric = registry.ref
where registry.domain <> recorded.domain
