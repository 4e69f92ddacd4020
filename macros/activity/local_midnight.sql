{#
    The UTC instant (timestamp without zone) at which `date_expr` begins in the
    report time zone: every period boundary of the activity marts. Taken per
    value, so it is right on both sides of a DST change.
#}
{% macro local_midnight(date_expr, tz=none) -%}
    {{ return(adapter.dispatch('local_midnight', 'trackhouse')(date_expr, tz)) }}
{%- endmacro %}

{% macro default__local_midnight(date_expr, tz) -%}
    {{ trackhouse.from_report_time('cast(' ~ date_expr ~ ' as timestamp)', tz) }}
{%- endmacro %}
