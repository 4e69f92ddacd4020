{#
    A double precision value rounded to `places` decimals, as double precision.
    PostgreSQL has round() only for numeric; DuckDB rounds doubles directly.
    Both give the double nearest the rounded decimal, so the data-driven model's
    intermediate probabilities are the same on both engines.
#}
{% macro round_double(expr, places) -%}
    {{ return(adapter.dispatch('round_double', 'trackhouse')(expr, places)) }}
{%- endmacro %}

{% macro default__round_double(expr, places) -%}
    cast(round(cast({{ expr }} as numeric), {{ places }}) as double precision)
{%- endmacro %}

{% macro duckdb__round_double(expr, places) -%}
    round(cast({{ expr }} as double), {{ places }})
{%- endmacro %}
