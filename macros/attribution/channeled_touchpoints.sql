{#
    The body of int_touchpoints_channeled: the counted rows of `cleaned` (a relation,
    or a parenthesised query with its alias, with int_touchpoints_cleaned's columns), each with its
    channel from the seed channel_rules. The view calls it on all of
    int_touchpoints_cleaned; the incremental touchpoints mart on the rows of new
    batches only, so that a run does not read every stored touchpoint.
#}
{% macro channeled_touchpoints(cleaned) -%}
{%- set click_ids = ['gclid', 'msclkid', 'fbclid', 'ttclid', 'li_fat_id', 'twclid', 'igshid'] -%}

with

cleaned_touchpoints as (
    select * from {{ cleaned }}
),

channel_rules as (
    select * from {{ ref('trackhouse', 'channel_rules') }}
),

channel_hosts as (
    select * from {{ ref('trackhouse', 'channel_hosts') }}
),

{# read once: the signatures and the final join both use it #}
counted as {{ trackhouse.materialized_hint() }} (
    select
        *,
        coalesce(
            lower(utm_source),
            {{ trackhouse.regex_group(
                'lower(referrer)', '^[a-z][a-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)') }},
            ''
        ) as traffic_source,
        coalesce(lower(utm_medium), '') as traffic_medium
    from cleaned_touchpoints
    where is_counted
),

signatures as (
    select distinct
        {%- for click_id in click_ids %}
            {{ click_id }} is not null as has_{{ click_id }},
        {%- endfor %}
        traffic_source,
        traffic_medium
    from counted
),

{# the longest seed domain found in the source at dot boundaries #}
source_categories as (
    select
        traffic_source,
        category as source_category
    from (
        select
            sources.traffic_source,
            channel_hosts.category,
            row_number() over (
                partition by sources.traffic_source
                order by length(channel_hosts.domain) desc, channel_hosts.domain
            ) as match_rank
        from (select distinct traffic_source from signatures) as sources
        inner join channel_hosts
            on
                position(
                    '.' || lower(channel_hosts.domain) || '.'
                    in '.' || sources.traffic_source || '.'
                ) > 0
    ) as matches
    where match_rank = 1
),

categorized as (
    select
        signatures.*,
        source_categories.source_category
    from signatures
    left join source_categories
        on signatures.traffic_source = source_categories.traffic_source
),

matching_rules as (
    select
        categorized.traffic_source,
        categorized.traffic_medium,
        {%- for click_id in click_ids %}
            categorized.has_{{ click_id }},
        {%- endfor %}
        channel_rules.channel,
        row_number() over (
            partition by
                {%- for click_id in click_ids %}
                    categorized.has_{{ click_id }},
                {%- endfor %}
                categorized.traffic_source,
                categorized.traffic_medium
            order by channel_rules.rule_order
        ) as rule_rank
    from categorized
    inner join channel_rules
        on
            (
                coalesce(channel_rules.source_category, '') = ''
                or channel_rules.source_category = categorized.source_category
            )
            and (
                coalesce(channel_rules.source_pattern, '') = ''
                or {{ trackhouse.regex_matches('categorized.traffic_source', 'channel_rules.source_pattern') }}
            )
            and (
                coalesce(channel_rules.medium_pattern, '') = ''
                or {{ trackhouse.regex_matches('categorized.traffic_medium', 'channel_rules.medium_pattern') }}
            )
            and (
                coalesce(channel_rules.click_ids, '') = ''
                {%- for click_id in click_ids %}
                    or (
                        categorized.has_{{ click_id }}
                        and position('|{{ click_id }}|' in '|' || channel_rules.click_ids || '|') > 0
                    )
                {%- endfor %}
            )
),

channels as (
    select *
    from matching_rules
    where rule_rank = 1
),

final as (
    select
        counted.*,
        coalesce(channels.channel, 'Unassigned') as channel
    from counted
    left join channels
        on
            counted.traffic_source = channels.traffic_source
            and counted.traffic_medium = channels.traffic_medium
            {%- for click_id in click_ids %}
                and (counted.{{ click_id }} is not null) = channels.has_{{ click_id }}
            {%- endfor %}
)

select * from final
{%- endmacro %}
