{#
    How many whole clamped months (see add_months_clamped) lie between
    `anchor_date` and `date_expr`: the largest n with
    add_months_clamped(anchor_date, n) <= date_expr. It is the 0-based index of
    the subscription month that contains `date_expr` (negative before the anchor).
    The calendar month difference is right unless the date falls before the
    (clamped) anchor day of its own month, then it is one less.
#}
{% macro months_between_clamped(anchor_date, date_expr) -%}
    {{ return(adapter.dispatch('months_between_clamped', 'trackhouse')(anchor_date, date_expr)) }}
{%- endmacro %}

{% macro default__months_between_clamped(anchor_date, date_expr) -%}
    {%- set calendar_months = 'cast(' ~ dbt.datediff(anchor_date, date_expr, 'month') ~ ' as integer)' -%}
    (
        {{ calendar_months }}
        - case
            when {{ trackhouse.add_months_clamped(anchor_date, calendar_months) }} > {{ date_expr }} then 1
            else 0
        end
    )
{%- endmacro %}
