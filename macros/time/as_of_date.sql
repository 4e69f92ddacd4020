{#
    The last date that statistics and reports cover: var `as_of` (YYYY-MM-DD),
    else today in the report time zone (not the server's zone).
#}
{% macro as_of_date() -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as date)
    {%- else -%}
        {{ trackhouse.report_date(dbt.current_timestamp()) }}
    {%- endif -%}
{%- endmacro %}
