{#
    `expression` (text) compared by its bytes, so that ties broken by an id
    (the latest statement, first and last touch, identity chains) go the same
    way on every engine. DuckDB compares strings by bytes already; PostgreSQL
    compares by the database's collation (e.g. en_US: 'a' < 'B'), so there the
    expression takes the "C" collation (bytes: 'B' < 'a').
    Use it in ORDER BY and comparisons, e.g.
        order by stated_at desc, {{ trackhouse.byte_order('event_id') }} desc
#}
{% macro byte_order(expression) -%}
    {{ return(adapter.dispatch('byte_order', 'trackhouse')(expression)) }}
{%- endmacro %}

{% macro default__byte_order(expression) -%}
    {{ expression }}
{%- endmacro %}

{% macro postgres__byte_order(expression) -%}
    ({{ expression }}) collate "C"
{%- endmacro %}
