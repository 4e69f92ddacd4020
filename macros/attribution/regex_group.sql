{#
    The first capture group of `pattern` in `expr`, or null when the pattern
    does not match or the group is empty. DuckDB's regexp_extract returns ''
    for no match while PostgreSQL's substring returns null: both become null
    here, which is what callers want (an empty value counts as absent).
    The pattern is an SQL string literal's content; write it without
    backslashes (use [?] rather than \?) so it means the same in both.
#}
{% macro regex_group(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_group', 'trackhouse')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regex_group(expr, pattern) -%}
    nullif(substring({{ expr }} from '{{ pattern }}'), '')
{%- endmacro %}

{% macro duckdb__regex_group(expr, pattern) -%}
    nullif(regexp_extract({{ expr }}, '{{ pattern }}', 1), '')
{%- endmacro %}
