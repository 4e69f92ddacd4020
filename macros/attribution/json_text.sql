{#
    The top-level field `key` of a JSON object held as text, as text (null
    when absent). Used for Segment's context.campaign, stored as JSON text.
#}
{% macro json_text(json_expr, key) -%}
    {{ return(adapter.dispatch('json_text', 'trackhouse')(json_expr, key)) }}
{%- endmacro %}

{% macro default__json_text(json_expr, key) -%}
    (cast({{ json_expr }} as json) ->> '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(json_expr, key) -%}
    json_extract_string({{ json_expr }}, '$.{{ key }}')
{%- endmacro %}
