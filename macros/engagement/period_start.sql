{#
    The first local date of the `grain` period ('day', 'week' = ISO week from
    Monday, 'month') holding the date `date_expr`. `grain` is a Jinja string
    when known at compile time, else an SQL expression naming the grain.
#}
{% macro period_start(grain, date_expr) -%}
    {%- if grain in ('day', 'week', 'month') -%}
        {%- if grain == 'day' -%}
            cast({{ date_expr }} as date)
        {%- else -%}
            cast({{ dbt.date_trunc(grain, date_expr) }} as date)
        {%- endif -%}
    {%- else -%}
        case {{ grain }}
            when 'day' then cast({{ date_expr }} as date)
            when 'week' then cast({{ dbt.date_trunc('week', date_expr) }} as date)
            else cast({{ dbt.date_trunc('month', date_expr) }} as date)
        end
    {%- endif -%}
{%- endmacro %}
