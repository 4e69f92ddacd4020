{#
    The grains the engagement models count periods in, one row each (column
    grain): day, week (ISO, from Monday) and month. Cross join it with dates and
    take trackhouse.period_start('grains.grain', date).
#}
{% macro engagement_grains() -%}
    select 'day' as grain
    union all
    select 'week' as grain
    union all
    select 'month' as grain
{%- endmacro %}
