{#
    `date_expr` plus `months` calendar months, the day of month clamped to the
    length of the target month: Jan 31 + 1 -> Feb 28 (29), + 2 -> Mar 31,
    + 3 -> Apr 30. Always computed from the anchor itself, never chained from a
    previously clamped date, so a Jan 31 anchor gets back to the 31st in March.
    Both DuckDB and PostgreSQL clamp this way when adding a month interval.
#}
{% macro add_months_clamped(date_expr, months) -%}
    {{ return(adapter.dispatch('add_months_clamped', 'trackhouse')(date_expr, months)) }}
{%- endmacro %}

{% macro default__add_months_clamped(date_expr, months) -%}
    cast({{ dbt.dateadd('month', months, date_expr) }} as date)
{%- endmacro %}
