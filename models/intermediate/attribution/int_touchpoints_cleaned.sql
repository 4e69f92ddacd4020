{#
    Every raw touchpoint with its 12 tracking parameters extracted and
    cleaned, and the flags that decide whether it counts. Cleaning happens
    here, from the raw url, so changing max_utm_length, utm_excluded_urls,
    filter_bots or the bot seed and rebuilding re-applies the setting to all
    history without re-ingesting anything.

    Incremental (DuckDB, PostgreSQL; a table on Spark, dbt_project.yml): a run
    cleans only the raw rows written by batches committed after the previous
    build (load_sequence), and replaces rows by touchpoint_id. Nothing else
    changes a stored row's inputs but three things, and each makes the run a
    full rebuild or re-reads the rows it changed, so a run equals a full refresh:
      - `trackhouse prune` rewrites old URLs, referrers and user agents, and
        stamps the rewritten raw rows with a new load_sequence of their own:
        they are cleaned again;
      - `trackhouse forget` deletes raw rows: the pre_hook empties this table
        (reset_after_deletions), so the run rebuilds it;
      - the settings above (the vars and the seed's patterns): their
        fingerprint is kept beside the deletions seen, and a new one empties
        this table the same way.
    At 1M touchpoints the 12 extractions and decodings are the attribution
    chain's most expensive step (4 s of a DuckDB build); a day of new page
    views costs what it holds.
#}
{{ config(
    incremental_strategy='delete+insert',
    unique_key='touchpoint_id',
    on_schema_change='sync_all_columns',
    pre_hook="{{ trackhouse.reset_after_deletions(trackhouse.touchpoint_settings_fingerprint()) }}",
) }}
{%- set parameters = [
    'utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content',
    'fbclid', 'gclid', 'msclkid', 'ttclid', 'li_fat_id', 'twclid', 'igshid',
] -%}
{#- Segment's context.campaign field for each utm parameter it can fill. -#}
{%- set campaign_fields = {
    'utm_source': 'source', 'utm_medium': 'medium', 'utm_campaign': 'name',
    'utm_term': 'term', 'utm_content': 'content',
} -%}
{%- set max_length = var('max_utm_length', 200) -%}
{%- if not (max_length | string).isdigit() -%}
    {{ exceptions.raise_compiler_error(
        "var max_utm_length is " ~ max_length ~ "; it must be a whole number of characters "
        ~ "(default 200). Fix it in dbt_project.yml or --vars.") }}
{%- endif -%}

with

touchpoints as (
    select * from {{ ref('trackhouse', 'stg_page_touchpoints') }}
    {#- (a table built before this model was incremental has no load_sequence: the
        pre_hook has just emptied it, and this run reads everything) -#}
    {%- if is_incremental() and 'load_sequence' in (
        adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list) %}
        where {{ trackhouse.loaded_after('load_sequence', '(select max(load_sequence) from ' ~ this ~ ')') }}
    {%- endif %}
),

bot_user_agents as (
    select lower(pattern) as pattern
    from {{ ref('trackhouse', 'bot_user_agents') }}
    where pattern is not null and pattern <> ''
),

{# Few distinct user agents, many page views: match the patterns once per agent. #}
user_agents as (
    select distinct user_agent
    from touchpoints
    where user_agent is not null
),

bot_agents as (
    select distinct user_agents.user_agent
    from user_agents
    inner join bot_user_agents
        on position(bot_user_agents.pattern in lower(user_agents.user_agent)) > 0
),

split_urls as {{ trackhouse.materialized_hint() }} (
    select
        *,
        {{ trackhouse.regex_group('url', '^[^?#]*[?]([^#]*)') }} as query_string,
        coalesce(
            {{ trackhouse.regex_group('url', '^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)') }},
            '/'
        ) as url_path
    from touchpoints
),

{#
    Names are case-sensitive; a repeated parameter takes its last value.
    The steps are `materialized`: each refers to the previous step's columns
    several times, and PostgreSQL would otherwise inline them and evaluate
    the regexes and decoding subqueries again for every reference (170 s
    instead of a few for 200k page views).
#}
raw_values as {{ trackhouse.materialized_hint() }} (
    select
        {%- for parameter in parameters %}
            {{ trackhouse.query_parameter('query_string', parameter) }} as raw_{{ parameter }},
        {%- endfor %}
        {%- for parameter, field in campaign_fields.items() %}
            {{ trackhouse.json_text('campaign_json', field) }} as campaign_{{ parameter }},
        {%- endfor %}
        split_urls.*
    from split_urls
),

decoded_values as {{ trackhouse.materialized_hint() }} (
    select
        {%- for parameter in parameters %}
            {{ trackhouse.url_decode('raw_' ~ parameter) }} as decoded_{{ parameter }},
        {%- endfor %}
        raw_values.*
    from raw_values
),

{# The URL's value wins; context.campaign fills the utm_* the URL lacks. #}
cleaned_values as {{ trackhouse.materialized_hint() }} (
    select
        {%- for parameter in parameters %}
            {%- if parameter in campaign_fields %}
                coalesce(
                    {{ trackhouse.clean_tracking_value('decoded_' ~ parameter) }},
                    {{ trackhouse.clean_tracking_value('campaign_' ~ parameter) }}
                ) as cleaned_{{ parameter }},
            {%- else %}
                {{ trackhouse.clean_tracking_value('decoded_' ~ parameter) }} as cleaned_{{ parameter }},
            {%- endif %}
        {%- endfor %}
        decoded_values.*
    from decoded_values
),

{# Too long to be a real campaign value: dropped (the raw table keeps it). #}
limited_values as (
    select
        {%- for parameter in parameters %}
            case
                when length(cleaned_{{ parameter }}) <= {{ max_length }} then cleaned_{{ parameter }}
            end as {{ parameter }},
        {%- endfor %}
        cleaned_values.*
    from cleaned_values
),

flagged as (
    select
        limited_values.touchpoint_id,
        limited_values.anonymous_id,
        limited_values.user_id,
        limited_values.touched_at,
        limited_values.url,
        limited_values.url_path,
        limited_values.referrer,
        limited_values.user_agent,
        limited_values.load_sequence,
        {%- for parameter in parameters %}
            limited_values.{{ parameter }},
        {%- endfor %}
        {#- any of the 12 survived cleaning -#}
        coalesce(
            {%- for parameter in parameters %}
                limited_values.{{ parameter }},
            {%- endfor %}
            null
        ) is not null as has_tracking_parameters,
        bot_agents.user_agent is not null as is_bot,
        {{ trackhouse.is_excluded_path('limited_values.url_path') }} as is_excluded_path
    from limited_values
    left join bot_agents
        on limited_values.user_agent = bot_agents.user_agent
),

final as (
    select
        *,
        {#- with the var filter_bots off, bots count like anyone -#}
        has_tracking_parameters
        and not is_excluded_path
        and {{ 'not is_bot' if var('filter_bots', true) else 'true' }} as is_counted
    from flagged
)

select * from final
