{#
    Local wall-clock time in the report time zone -> UTC timestamp (no zone).
    Used to turn local period boundaries (e.g. a local midnight) into the UTC
    instants the raw data is stored in.
#}
{% macro from_report_time(local_timestamp, tz=none) -%}
    {{ return(adapter.dispatch('from_report_time', 'trackhouse')(local_timestamp, tz or var('report_timezone', 'UTC'))) }}
{%- endmacro %}

{% macro default__from_report_time(local_timestamp, tz) -%}
    (({{ local_timestamp }}) at time zone '{{ tz }}') at time zone 'UTC'
{%- endmacro %}

{% macro duckdb__from_report_time(local_timestamp, tz) -%}
    cast(((cast({{ local_timestamp }} as timestamp) at time zone '{{ tz }}') at time zone 'UTC') as timestamp)
{%- endmacro %}
