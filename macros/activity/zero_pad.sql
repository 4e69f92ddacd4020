{#
    An integer as text with at least two digits ('7' -> '07', '123' stays
    '123'); lpad() would cut '123' to '12' on PostgreSQL.
#}
{% macro zero_pad(integer_expr) -%}
    {{ return(adapter.dispatch('zero_pad', 'trackhouse')(integer_expr)) }}
{%- endmacro %}

{% macro default__zero_pad(integer_expr) -%}
    case
        when ({{ integer_expr }}) between 0 and 9 then '0' || cast({{ integer_expr }} as {{ dbt.type_string() }})
        else cast({{ integer_expr }} as {{ dbt.type_string() }})
    end
{%- endmacro %}
