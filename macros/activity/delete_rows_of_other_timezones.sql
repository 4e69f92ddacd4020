{#
    A pre_hook for the incremental activity tables whose rows are local dates:
    on an incremental run, delete the rows built for another report time zone
    (column report_timezone). After a change of var `report_timezone` the table
    is then empty and the run builds it again from scratch; with an unchanged
    zone this deletes nothing. Renders nothing on a first build or a full refresh.
    Usage: config(pre_hook="{{ trackhouse.delete_rows_of_other_timezones() }}").
#}
{% macro delete_rows_of_other_timezones() -%}
    {{ return(adapter.dispatch('delete_rows_of_other_timezones', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__delete_rows_of_other_timezones() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where report_timezone <> '{{ var("report_timezone", "UTC") }}'
    {%- endif -%}
{%- endmacro %}
