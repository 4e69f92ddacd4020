{#
    Whether the existing relation `relation` has a column named `column` (case
    insensitive): an incremental model asks it of `this` before it filters on a
    column that a table built by an earlier version of the model may lack.
#}
{% macro has_column(relation, column) -%}
    {{ return(column | lower in (
        adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list)) }}
{%- endmacro %}
