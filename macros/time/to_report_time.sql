{#
    A UTC timestamp (stored without a zone) as local wall-clock time in the
    report time zone (var `report_timezone`). Local midnights are correct
    across DST changes because the zone is applied per value, not as an offset.
#}
{% macro to_report_time(utc_timestamp, tz=none) -%}
    {{ return(adapter.dispatch('to_report_time', 'trackhouse')(utc_timestamp, tz or var('report_timezone', 'UTC'))) }}
{%- endmacro %}

{% macro default__to_report_time(utc_timestamp, tz) -%}
    (({{ utc_timestamp }}) at time zone 'UTC') at time zone '{{ tz }}'
{%- endmacro %}

{% macro duckdb__to_report_time(utc_timestamp, tz) -%}
    {#- needs the built-in icu extension, which DuckDB loads on demand -#}
    cast(((({{ utc_timestamp }}) at time zone 'UTC') at time zone '{{ tz }}') as timestamp)
{%- endmacro %}
