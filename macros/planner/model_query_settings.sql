{#
    Settings for the transaction that builds a table or incremental model: a
    pre-hook of every trackhouse model (dbt_project.yml), so they hold for that
    model's statements only.

    PostgreSQL: JIT compilation off. PostgreSQL compiles a query's expressions when
    its estimated cost passes jit_above_cost; for the deep plans of these models
    (int_channel_removal_effects squares a transition matrix 32 times) compiling
    took ~6 s of a build that runs in ~0.1 s without it, on any amount of data
    (docs/attribution.md). The query API does the same for attribution
    (attribution.POSTGRES_PLANNER). Nothing on the other targets, or for views.
#}
{% macro model_query_settings() -%}
    {{ return(adapter.dispatch('model_query_settings', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__model_query_settings() -%}
{%- endmacro %}

{% macro postgres__model_query_settings() -%}
    {%- if config.get('materialized') in ('table', 'incremental') -%}
        set local jit = off
    {%- endif -%}
{%- endmacro %}
