{#
    The touchpoints that count: a tracking parameter survived cleaning, the
    path is not excluded (var utm_excluded_urls) and, while filter_bots is
    on, the user agent is not a bot's. Each belongs to its stitched identity
    and has a channel (seed channel_rules, see int_touchpoints_channeled).

    Incremental (DuckDB, PostgreSQL; a table on Spark, dbt_project.yml),
    delete+insert by touchpoint_id. A stored row changes for three reasons,
    and a run handles each, so it equals a full refresh:
      - its cleaned row was (re)written by a batch committed after the
        newest batch stored here (load_sequence: new page views, and rows
        `trackhouse prune` rewrote): the pre_hook deletes those ids and the
        run inserts the ones that still count;
      - its identity was stitched anew (a new identify or alias call,
        retroactive): every stored row's stitched_id is resolved again
        (two joins on stored ids, no URL is parsed) and the changed rows are
        replaced;
      - a forget, or a new setting (the vars and seeds that decide cleaning
        and channels: channel_settings_fingerprint): the pre_hook empties the table and the
        run rebuilds it.
#}
{{ config(
    incremental_strategy='delete+insert',
    unique_key='touchpoint_id',
    pre_hook=[
        "{{ trackhouse.reset_after_deletions(trackhouse.channel_settings_fingerprint()) }}",
        "{{ trackhouse.delete_recleaned_touchpoints() }}",
    ],
) }}

-- depends_on: {{ ref('trackhouse', 'int_touchpoints_cleaned') }}
-- depends_on: {{ ref('trackhouse', 'int_touchpoints_channeled') }}
-- depends_on: {{ ref('trackhouse', 'channel_rules') }}
-- depends_on: {{ ref('trackhouse', 'channel_hosts') }}
-- depends_on: {{ ref('trackhouse', 'bot_user_agents') }}
{#- Incremental once the stored table has the watermark; a table built before this
    mart was incremental has none: every row is read again and replaced. -#}
{%- set incremental_run = is_incremental() and trackhouse.has_column(this, 'load_sequence') %}

{#- An incremental run channels only the cleaned rows of new batches (the view
    int_touchpoints_channeled would read every stored one), with the view's macro. -#}
{%- if incremental_run %}
    {%- set new_rows -%}
        (
            select *
            from {{ ref('trackhouse', 'int_touchpoints_cleaned') }}
            where {{ trackhouse.loaded_after('load_sequence', '(select max(load_sequence) from ' ~ this ~ ')') }}
        ) as new_cleaned_rows
    {%- endset %}
    {%- set channeled = '(' ~ trackhouse.channeled_touchpoints(new_rows) ~ ') as channeled_rows' %}
{%- else %}
    {%- set channeled = ref('trackhouse', 'int_touchpoints_channeled') %}
{%- endif %}

with

cleaned_touchpoints as (
    select * from {{ channeled }}
),

{# read once: the new rows and the stored ones (incremental) are stitched with it #}
resolved_links as {{ trackhouse.materialized_hint() }} (
    select * from {{ ref('trackhouse', 'int_identity_links_resolved') }}
),

counted_touchpoints as (
    select *
    from cleaned_touchpoints
    where is_counted
),

final as (
    select
        counted_touchpoints.touchpoint_id,
        {{ trackhouse.stitched_id('counted_touchpoints') }} as stitched_id,
        counted_touchpoints.anonymous_id,
        counted_touchpoints.user_id,
        counted_touchpoints.touched_at,
        counted_touchpoints.url,
        counted_touchpoints.referrer,
        counted_touchpoints.utm_source,
        counted_touchpoints.utm_medium,
        counted_touchpoints.utm_campaign,
        counted_touchpoints.utm_term,
        counted_touchpoints.utm_content,
        counted_touchpoints.fbclid,
        counted_touchpoints.gclid,
        counted_touchpoints.msclkid,
        counted_touchpoints.ttclid,
        counted_touchpoints.li_fat_id,
        counted_touchpoints.twclid,
        counted_touchpoints.igshid,
        counted_touchpoints.channel,
        counted_touchpoints.load_sequence
    from counted_touchpoints
    {{ trackhouse.stitching_joins('counted_touchpoints') }}
){{ ',' if incremental_run }}

{%- if incremental_run %}

{# stored rows whose identity resolves to another id now #}
restitched as (
    select
        stored.touchpoint_id,
        {{ trackhouse.stitched_id('stored') }} as stitched_id,
        stored.stitched_id as stored_stitched_id
    from {{ this }} as stored
    {{ trackhouse.stitching_joins('stored') }}
),

moved as (
    select
        stored.touchpoint_id,
        restitched.stitched_id,
        stored.anonymous_id,
        stored.user_id,
        stored.touched_at,
        stored.url,
        stored.referrer,
        stored.utm_source,
        stored.utm_medium,
        stored.utm_campaign,
        stored.utm_term,
        stored.utm_content,
        stored.fbclid,
        stored.gclid,
        stored.msclkid,
        stored.ttclid,
        stored.li_fat_id,
        stored.twclid,
        stored.igshid,
        stored.channel,
        stored.load_sequence
    from {{ this }} as stored
    inner join restitched
        on stored.touchpoint_id = restitched.touchpoint_id
    where
        restitched.stitched_id is distinct from restitched.stored_stitched_id
        and stored.touchpoint_id not in (select final.touchpoint_id from final)
)
{%- endif %}

select * from final
{%- if incremental_run %}
union all
select * from moved
{%- endif %}
