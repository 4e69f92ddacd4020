{#
    What int_touchpoints_cleaned's stored rows depend on besides the raw rows, as
    one SQL text: the vars max_utm_length and filter_bots, the prefixes of
    utm_excluded_urls (as is_excluded_path renders them), and the patterns of the
    seed bot_user_agents. Kept by reset_after_deletions: a new value rebuilds the
    incremental model, so a changed setting re-applies to all history.
#}
{% macro touchpoint_settings_fingerprint() -%}
    {%- set settings = [
        var('max_utm_length', 200), var('filter_bots', true), trackhouse.is_excluded_path('p'),
    ] | join('|') -%}
    '{{ local_md5(settings) }}/' || coalesce((
        select {{ dbt.hash(dbt.listagg('pattern', "'|'", 'order by pattern')) }}
        from {{ ref('trackhouse', 'bot_user_agents') }}
    ), '')
{%- endmacro %}
