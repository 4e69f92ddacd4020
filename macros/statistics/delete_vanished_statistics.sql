{#
    post_hook of the statistics marts: an incremental run writes a null value
    for every key it no longer produces (see statistics_mart); this deletes
    them, in the same transaction, so the mart keeps only what a full refresh
    would have. A full refresh writes no null values: nothing to delete.
#}
{% macro delete_vanished_statistics() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where value is null
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
