{#
    The body of the two statistics marts, statistics_by_date (by_object=false)
    and statistics_by_date_and_object (by_object=true): the built-in metrics
    computed by the tracker macros, the models listed in
    var('statistics_by_date_models') / var('statistics_by_date_and_object_models')
    (your own trackers), and recorded statistics without / with an object. A
    recorded value wins over a computed one for the same key: it is what
    someone stated on purpose (a correction, or history from before tracking).
    By object the rows are sparse (trackhouse.track_statistics); the trackers
    keep a computed lifetime row on the day after each recorded lifetime value,
    so that carrying lifetime forward (the query API) resumes the computed value.

    Incremental: each tracker recomputes only from its own from_date on (the
    last lookback_days, or earlier where its daily values changed, or where a
    recorded statistic changed), and returns a row with a null value for every
    stored key it no longer produces (a first date moved later, an object or a
    metric without data, dates after an earlier as_of). delete+insert
    (strategy statistics_replace) replaces those keys, and the marts' post_hook
    (trackhouse.delete_vanished_statistics) deletes the null rows: an incremental
    run leaves what a full refresh leaves.
    Listed models are copied whole.
#}
{% macro statistics_mart(by_object) -%}
{%- set trackers = trackhouse.statistics_builtin_trackers() -%}
{%- set listed_models = var(
    'statistics_by_date_and_object_models' if by_object else 'statistics_by_date_models', []) -%}
{#- the object columns, in the by-object mart only -#}
{%- set object_columns = ['object_type', 'object_id'] if by_object else [] -%}

with

recorded as (
    select
        domain,
        metric,
        period,
        statistic_date as date,
        {%- for column in object_columns %}
        {{ column }},
        {%- endfor %}
        value
    from {{ ref('trackhouse', 'int_recorded_statistics_deduplicated') }}
    where object_type is {{ 'not ' if by_object }}null
),

{%- if is_incremental() %}

{# What the trackers compare their fresh daily values with: the stored `day` rows
   (only those: the comparison spans all dates, the other periods are looked at
   only from each tracker's from_date on, in {{ this }} itself). A stored value that
   a recorded statistic overrode says nothing about the computation, so it is null. #}
stored as (
    select
        previous.domain,
        previous.metric,
        previous.period,
        previous.date,
        {%- for column in object_columns %}
        previous.{{ column }},
        {%- endfor %}
        case when recorded.value is null then previous.value end as value
    from {{ this }} as previous
    left join recorded
        on
            previous.metric = recorded.metric
            and previous.period = recorded.period
            and previous.date = recorded.date
            {%- for column in object_columns %}
            and previous.{{ column }} = recorded.{{ column }}
            {%- endfor %}
    where previous.period = 'day'
),

recorded_changes as (
    select
        recorded.domain,
        recorded.metric,
        min(recorded.date) as changed_date
    from recorded
    left join {{ this }} as previous
        on
            recorded.metric = previous.metric
            and recorded.period = previous.period
            and recorded.date = previous.date
            {%- for column in object_columns %}
            and recorded.{{ column }} = previous.{{ column }}
            {%- endfor %}
    where previous.value is null or previous.value <> recorded.value
    group by recorded.domain, recorded.metric
),

{%- endif %}

{%- set computed_relations = [] %}

{#- The trackers' SQL is generated (its layout is the macro's), and so is the union. #}
-- noqa: disable=LT02
{% for tracker in trackers %}

{%- set domain_ref, metric_ref = tracker.metric.split('.') %}
{%- do computed_relations.append('tracked_' ~ metric_ref) %}
{#- By object, lifetime rows are kept on the day after a recorded lifetime value,
    so that the value carried forward from there is the computed one again. -#}
{%- set keep_lifetime_on -%}
    select
        recorded.object_id,
        cast({{ dbt.dateadd('day', 1, 'recorded.date') }} as date) as kept_date
    from recorded
    where
        recorded.domain = '{{ domain_ref }}'
        and recorded.metric = '{{ metric_ref }}'
        and recorded.period = 'lifetime'
        and recorded.object_type = '{{ tracker.object_type }}'
{%- endset %}
{%- set recompute_from -%}
    (
        select recorded_changes.changed_date
        from recorded_changes
        where recorded_changes.domain = '{{ domain_ref }}' and recorded_changes.metric = '{{ metric_ref }}'
    )
{%- endset %}

tracked_{{ metric_ref }} as (
    {{ trackhouse.track_statistics(
        metric=tracker.metric,
        relation=ref('trackhouse', tracker.by_date_relation)
            if not by_object and tracker.get('by_date_relation') else tracker.relation,
        timestamp_column=tracker.get('timestamp_column'),
        date_column=tracker.get('date_column'),
        count_distinct=tracker.get('count_distinct'),
        sum_column=tracker.get('sum_column'),
        where=tracker.get('where') if by_object else tracker.get('by_date_where', tracker.get('where')),
        object_column=tracker.object_column if by_object else none,
        object_type=tracker.object_type if by_object else none,
        stored='stored' if is_incremental() else none,
        stored_keys=this if is_incremental() else none,
        recompute_from=recompute_from if is_incremental() else none,
        by_object=by_object,
        keep_lifetime_on=keep_lifetime_on if by_object else none,
    ) | indent(4) }}
),

{%- endfor %}

{%- for model_name in listed_models %}
{%- do computed_relations.append(ref(model_name)) %}
{%- endfor %}

computed as (
    {%- for relation_name in computed_relations %}
    {%- if not loop.first %}
    union all
    {%- endif %}
    select
        domain,
        metric,
        period,
        date,
        {%- for column in object_columns %}
        {{ column }},
        {%- endfor %}
        value
    from {{ relation_name }}
    {%- endfor %}
),
-- noqa: enable=LT02

{# Recorded rows go in with the dates their metric is recomputed from, or from
    their own earliest change (metrics that are only recorded). #}
recorded_in_scope as (
    select recorded.*
    from recorded
    {%- if is_incremental() %}
    left join (
        select
            domain,
            metric,
            min(date) as from_date
        from computed
        group by domain, metric
    ) as recomputed
        on recorded.domain = recomputed.domain and recorded.metric = recomputed.metric
    left join recorded_changes
        on recorded.domain = recorded_changes.domain and recorded.metric = recorded_changes.metric
    where recorded.date >= least(recomputed.from_date, recorded_changes.changed_date)
    {%- endif %}
),

merged as (
    select
        coalesce(recorded_in_scope.domain, computed.domain) as domain,
        coalesce(recorded_in_scope.metric, computed.metric) as metric,
        coalesce(recorded_in_scope.period, computed.period) as period,
        coalesce(recorded_in_scope.date, computed.date) as date,
        {%- for column in object_columns %}
        coalesce(recorded_in_scope.{{ column }}, computed.{{ column }}) as {{ column }},
        {%- endfor %}
        coalesce(recorded_in_scope.value, computed.value) as value
    from computed
    full outer join recorded_in_scope
        on
            computed.metric = recorded_in_scope.metric
            and computed.period = recorded_in_scope.period
            and computed.date = recorded_in_scope.date
            {%- for column in object_columns %}
            and computed.{{ column }} = recorded_in_scope.{{ column }}
            {%- endfor %}
),

final as (
    select
        cast(domain as {{ trackhouse.varchar_type() }}) as domain,
        cast(metric as {{ trackhouse.varchar_type() }}) as metric,
        cast(period as {{ trackhouse.varchar_type() }}) as period,
        cast(date as date) as date,
        {%- for column in object_columns %}
        cast({{ column }} as {{ trackhouse.varchar_type() }}) as {{ column }},
        {%- endfor %}
        cast(value as numeric(38, 6)) as value
    from merged
)

select * from final
{%- endmacro %}
