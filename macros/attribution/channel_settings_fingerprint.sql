{#
    What the touchpoints mart's stored rows depend on besides the raw rows and
    the identity links, as one SQL text: touchpoint_settings_fingerprint (the
    cleaning vars and the seed bot_user_agents) and every row of the seeds
    channel_rules and channel_hosts, which decide each touchpoint's channel
    (int_touchpoints_channeled). Kept by reset_after_deletions: a changed rule
    or host rebuilds the mart, so channels follow the seeds as a full refresh
    would.
#}
{% macro channel_settings_fingerprint() -%}
    {%- set rule_columns = [
        'rule_order', 'channel', 'source_category', 'source_pattern', 'medium_pattern', 'click_ids',
    ] -%}
    {%- set host_columns = ['domain', 'category'] -%}
    ({{ trackhouse.touchpoint_settings_fingerprint() }})
    || '/' || {{ trackhouse.seed_fingerprint(ref('trackhouse', 'channel_rules'), rule_columns) }}
    || '/' || {{ trackhouse.seed_fingerprint(ref('trackhouse', 'channel_hosts'), host_columns) }}
{%- endmacro %}

{# A hash of every row of `relation` (the listed columns, as text, nulls as ''), in a
   fixed order: any change to its rows changes it. '' for an empty relation. #}
{% macro seed_fingerprint(relation, columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    {%- set row_text = parts | join(" || chr(31) || ") -%}
    coalesce((
        select {{ dbt.hash(dbt.listagg('row_text', "chr(30)", 'order by row_text')) }}
        from (select {{ row_text }} as row_text from {{ relation }}) as seed_rows
    ), '')
{%- endmacro %}
