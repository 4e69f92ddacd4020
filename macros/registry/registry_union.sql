{#
    The rows of a built-in registry seed plus the rows of the root project's own
    seeds (or models) named by a var, so a project that installs trackhouse as a
    package extends the registry without editing the package. The names are
    ref()'d with one argument on purpose: they are the root project's nodes.
#}
{% macro registry_union(builtin, var_name, columns) -%}
    {%- set extensions = var(var_name, []) or [] -%}
    {%- if extensions is string -%}
        {%- set extensions = [extensions] -%}
    {%- endif -%}
    {%- if extensions is mapping or extensions is not iterable -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ var_name ~ " must be a list of seed or model names of your project, "
            ~ "e.g. ['my_metrics'], not " ~ tojson(extensions)) }}
    {%- endif -%}
    select
        {%- for column in columns %}
        cast({{ column }} as {{ dbt.type_string() }}) as {{ column }},
        {%- endfor %}
        cast('trackhouse' as {{ dbt.type_string() }}) as registered_in
    from {{ builtin }}
    {%- for name in extensions %}
    union all
    select
        {%- for column in columns %}
        cast({{ column }} as {{ dbt.type_string() }}) as {{ column }},
        {%- endfor %}
        cast('{{ name }}' as {{ dbt.type_string() }}) as registered_in
    from {{ ref(name) }}
    {%- endfor %}
{%- endmacro %}
