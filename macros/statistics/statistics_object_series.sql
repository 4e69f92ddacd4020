{#
    The body of statistics_object_series: one row per computed series of
    statistics_by_date_and_object — metric, period and object — with the
    object's first date and the as-of date the series runs to. The by-object
    mart is sparse (a row only where the object has data in the period's
    window, lifetime only where it changes); these rows tell the query API
    which dates to fill in (0, or the lifetime carried forward), so that it
    answers every date of a series as a dense table would.

    The built-in trackers give their objects' first dates (output='series' of
    trackhouse.track_statistics: the same facts as the mart); a model listed in
    var('statistics_by_date_and_object_models') gives the first date of each of
    its (metric, period, object). Recorded statistics are no series: they are
    returned as recorded, never filled in.
#}
{% macro statistics_object_series() -%}
{%- set trackers = trackhouse.statistics_builtin_trackers() -%}
{%- set listed_models = var('statistics_by_date_and_object_models', []) -%}
{%- set series_relations = [] -%}

with

{#- The trackers' SQL is generated (its layout is the macro's), and so is the union. #}
-- noqa: disable=LT02
{% for tracker in trackers %}
{%- set metric_ref = tracker.metric.split('.')[1] %}
{%- do series_relations.append('series_' ~ metric_ref) %}

series_{{ metric_ref }} as (
    {{ trackhouse.track_statistics(
        metric=tracker.metric,
        relation=tracker.relation,
        timestamp_column=tracker.get('timestamp_column'),
        date_column=tracker.get('date_column'),
        count_distinct=tracker.get('count_distinct'),
        sum_column=tracker.get('sum_column'),
        where=tracker.get('where'),
        object_column=tracker.object_column,
        object_type=tracker.object_type,
        by_object=true,
        output='series',
    ) | indent(4) }}
),

{%- endfor %}

{%- for model_name in listed_models %}
{%- do series_relations.append(ref(model_name)) %}
{%- endfor %}

series as (
    {%- for relation_name in series_relations %}
    {%- if not loop.first %}
    union all
    {%- endif %}
    {%- if loop.index <= trackers | length %}
    select
        domain,
        metric,
        period,
        object_type,
        object_id,
        first_date
    from {{ relation_name }}
    {%- else %}
    select
        domain,
        metric,
        period,
        object_type,
        object_id,
        min(date) as first_date
    from {{ relation_name }}
    where value is not null
    group by domain, metric, period, object_type, object_id
    {%- endif %}
    {%- endfor %}
),
-- noqa: enable=LT02

final as (
    select
        cast(domain as {{ trackhouse.varchar_type() }}) as domain,
        cast(metric as {{ trackhouse.varchar_type() }}) as metric,
        cast(period as {{ trackhouse.varchar_type() }}) as period,
        cast(object_type as {{ trackhouse.varchar_type() }}) as object_type,
        cast(object_id as {{ trackhouse.varchar_type() }}) as object_id,
        cast(first_date as date) as first_date,
        {{ trackhouse.as_of_date() }} as as_of_date
    from series
)

select * from final
{%- endmacro %}
