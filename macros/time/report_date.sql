{# The date, in the report time zone, of a UTC timestamp. #}
{% macro report_date(utc_timestamp, tz=none) -%}
    cast({{ trackhouse.to_report_time(utc_timestamp, tz) }} as date)
{%- endmacro %}
