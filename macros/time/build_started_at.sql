{#
    The moment this dbt invocation started (dbt's run_started_at), as a UTC
    timestamp without zone: the same value in every model of one build, unlike
    the database clock, which each model reads when it runs.
#}
{% macro build_started_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
{%- endmacro %}
