{#
    The latest value of `column` that is not after the build's start (`until`,
    default trackhouse.build_started_at(); for a local date column pass
    trackhouse.report_date(trackhouse.build_started_at())): what an incremental
    model takes as "the latest data built" for its lookback. One event stamped
    in the future (a wrong client clock) must not move the lookback window past
    the data that is still arriving.
#}
{% macro latest_until_build(column, until=none) -%}
    {%- set until = until or trackhouse.build_started_at() -%}
    max(case when {{ column }} <= {{ until }} then {{ column }} end)
{%- endmacro %}
