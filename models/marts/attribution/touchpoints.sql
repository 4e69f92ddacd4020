{#
    The touchpoints that count: a tracking parameter survived cleaning, the
    path is not excluded (var utm_excluded_urls) and, while filter_bots is
    on, the user agent is not a bot's. Each belongs to its stitched identity
    and has a channel (seed channel_rules, see int_touchpoints_channeled).
#}
with

cleaned_touchpoints as (
    select * from {{ ref('trackhouse', 'int_touchpoints_channeled') }}
),

resolved_links as (
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
        {#- a user id may itself be aliased to another user: follow it too -#}
        case
            when counted_touchpoints.user_id is not null
                then coalesce(by_user.user_id, counted_touchpoints.user_id)
            else coalesce(by_anonymous.user_id, counted_touchpoints.anonymous_id)
        end as stitched_id,
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
        counted_touchpoints.channel
    from counted_touchpoints
    left join resolved_links as by_user
        on counted_touchpoints.user_id = by_user.anonymous_id
    left join resolved_links as by_anonymous
        on counted_touchpoints.anonymous_id = by_anonymous.anonymous_id
)

select * from final
