{#
    What the rows of the incremental engagement models depend on besides the
    user-dates (a SQL text expression, for reset_after_deletions): the report
    time zone. A new one empties those tables, and the run rebuilds them.
#}
{% macro engagement_fingerprint() -%}
    '{{ var("report_timezone", "UTC") }}'
{%- endmacro %}
