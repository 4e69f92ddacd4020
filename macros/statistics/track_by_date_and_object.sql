{#
    CountObjectsByDateAndObjectTracker: one statistic row per period, date and
    object, for every object from its first date to the as-of date. See
    _statistics.yml and docs/statistics.md; the work is done by
    trackhouse.track_statistics.
#}
{% macro track_by_date_and_object(
    metric,
    relation,
    object_column,
    object_type,
    timestamp_column=none,
    date_column=none,
    count_distinct=none,
    sum_column=none,
    periods=none,
    where=none,
    stored=none,
    recompute_from=none
) -%}
    {{ return(trackhouse.track_statistics(
        metric=metric,
        relation=relation,
        timestamp_column=timestamp_column,
        date_column=date_column,
        count_distinct=count_distinct,
        sum_column=sum_column,
        object_column=object_column,
        object_type=object_type,
        periods=periods,
        where=where,
        stored=stored,
        recompute_from=recompute_from,
        by_object=true,
    )) }}
{%- endmacro %}
