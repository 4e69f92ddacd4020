{#
    The last date that statistics and reports cover: var `as_of` (YYYY-MM-DD),
    else the date in the report time zone at which this dbt invocation started
    (run_started_at), computed once in Jinja: every model of one build cuts at
    the same date, also when the build crosses local midnight.
#}
{% macro as_of_date() -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as date)
    {%- else -%}
        {%- set tz = modules.pytz.timezone(var('report_timezone', 'UTC')) -%}
        cast('{{ run_started_at.astimezone(tz).strftime("%Y-%m-%d") }}' as date)
    {%- endif -%}
{%- endmacro %}
