{#
    The date `periods` (an SQL integer expression) periods of `grain_expr`
    ('day', 'week', 'month') after the period start `date_expr`.
#}
{% macro add_periods(grain_expr, date_expr, periods) -%}
    case {{ grain_expr }}
        when 'day' then cast({{ dbt.dateadd('day', periods, date_expr) }} as date)
        when 'week' then cast({{ dbt.dateadd('day', '7 * (' ~ periods ~ ')', date_expr) }} as date)
        else cast({{ dbt.dateadd('month', periods, date_expr) }} as date)
    end
{%- endmacro %}
