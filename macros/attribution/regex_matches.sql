{#
    True when the regular expression `pattern` (an SQL expression, e.g. a seed
    column) matches anywhere in `expr`; anchor it with ^ and $ for a whole
    match. PostgreSQL's `~` and DuckDB's regexp_matches both search; patterns
    should keep to what POSIX and RE2 agree on (see seeds/channel_rules.yml).
#}
{% macro regex_matches(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'trackhouse')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regex_matches(expr, pattern) -%}
    ({{ expr }} ~ {{ pattern }})
{%- endmacro %}

{% macro duckdb__regex_matches(expr, pattern) -%}
    regexp_matches({{ expr }}, {{ pattern }})
{%- endmacro %}
