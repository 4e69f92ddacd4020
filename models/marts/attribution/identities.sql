{#
    One row per anonymous id seen in touchpoints, conversions or identity
    links, with the user it is stitched to. A touchpoint or conversion
    belongs to its own user id when it has one, else to the user its
    anonymous id is linked to here (also when the link came later), else to
    the anonymous id itself: stitched_id.
#}
with

touchpoints as (
    select * from {{ ref('trackhouse', 'stg_page_touchpoints') }}
),

conversion_events as (
    select * from {{ ref('trackhouse', 'stg_conversion_events') }}
),

identity_links as (
    select * from {{ ref('trackhouse', 'stg_identity_links') }}
),

resolved_links as (
    select * from {{ ref('trackhouse', 'int_identity_links_resolved') }}
),

anonymous_ids as (
    select anonymous_id from touchpoints
    union
    select anonymous_id from conversion_events
    union
    select anonymous_id from identity_links
),

final as (
    select
        anonymous_ids.anonymous_id,
        resolved_links.user_id,
        coalesce(resolved_links.user_id, anonymous_ids.anonymous_id) as stitched_id,
        resolved_links.linked_at,
        resolved_links.first_linked_id,
        coalesce(resolved_links.chain_length, 0) as chain_length
    from anonymous_ids
    left join resolved_links
        on anonymous_ids.anonymous_id = resolved_links.anonymous_id
    where anonymous_ids.anonymous_id is not null
)

select * from final
