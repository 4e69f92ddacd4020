{#
    Whole periods of `grain_expr` (an SQL expression: 'day', 'week' or
    'month') from the period starting on `start_date` to the one starting on
    `end_date`; both must be period starts (see period_start).
#}
{% macro periods_between(grain_expr, start_date, end_date) -%}
    case {{ grain_expr }}
        when 'day' then cast({{ dbt.datediff(start_date, end_date, 'day') }} as integer)
        when 'week' then cast({{ dbt.datediff(start_date, end_date, 'day') }} / 7 as integer)
        else cast({{ dbt.datediff(start_date, end_date, 'month') }} as integer)
    end
{%- endmacro %}
