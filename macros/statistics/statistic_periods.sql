{#
    The statistic periods (django-trackstats' Period) and their rolling windows
    in days: the value of a period on a date covers the `window` days ending on
    that date; lifetime (window none) covers everything up to and including it.
    Order matters: it is the order rows and docs list them in.
#}
{% macro statistic_periods() -%}
    {{ return({
        'day': 1,
        'week': 7,
        'days_28': 28,
        'month': 30,
        'lifetime': none,
    }) }}
{%- endmacro %}


{# One row per period of `periods` (a column `period`): a list to cross join with, so
   that a query reads its source once for all periods (Spark inlines CTEs per reference). #}
{% macro statistic_period_rows(periods) -%}
    {%- for period in periods %}
    select cast('{{ period }}' as {{ dbt.type_string() }}) as period
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}
