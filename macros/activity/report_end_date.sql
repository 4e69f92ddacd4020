{#
    The exclusive end of every report, as a local date: the day after
    trackhouse.as_of_date() (var `as_of`, default today in the report time
    zone). The last period of a report is cut there.
#}
{% macro report_end_date() -%}
    {{ return(adapter.dispatch('report_end_date', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__report_end_date() -%}
    cast({{ dbt.dateadd('day', 1, trackhouse.as_of_date()) }} as date)
{%- endmacro %}
