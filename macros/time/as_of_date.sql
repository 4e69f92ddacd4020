{#
    The last date that statistics and reports cover: var `as_of` (YYYY-MM-DD),
    else today in the report time zone (not the server's zone).
    dbt.current_timestamp() carries a zone on both adapters, so it is converted
    with a single `at time zone` (report_date() expects a zone-less UTC value).
#}
{% macro as_of_date() -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as date)
    {%- else -%}
        cast(({{ dbt.current_timestamp() }}) at time zone '{{ var("report_timezone", "UTC") }}' as date)
    {%- endif -%}
{%- endmacro %}
