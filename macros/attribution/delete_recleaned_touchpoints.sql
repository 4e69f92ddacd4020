{#
    A pre_hook of the incremental touchpoints mart: delete the stored touchpoints
    whose cleaned row (int_touchpoints_cleaned) was written by a batch committed
    after the newest batch stored in the mart: new page views have no stored row,
    and rows `trackhouse prune` rewrote are replaced by the run, or stay away if they
    no longer count. Nothing on a first build, a full refresh, or a table built
    before the mart was incremental (no load_sequence yet: the run replaces every row).
#}
{% macro delete_recleaned_touchpoints() -%}
    {%- if is_incremental() and trackhouse.has_column(this, 'load_sequence') -%}
        delete from {{ this }}
        where touchpoint_id in (
            select cleaned.touchpoint_id
            from {{ ref('trackhouse', 'int_touchpoints_cleaned') }} as cleaned
            where {{ trackhouse.loaded_after(
                'cleaned.load_sequence', '(select max(stored.load_sequence) from ' ~ this ~ ' as stored)') }}
        )
    {%- endif -%}
{%- endmacro %}
