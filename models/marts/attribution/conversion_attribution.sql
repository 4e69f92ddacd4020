{#
    One row per conversion and model (first_touch, last_touch): the
    touchpoint that gets the credit, with its 12 tracking parameters and
    referrer. first_touch = the earliest eligible touchpoint, last_touch =
    the latest, in the order (touched_at, touchpoint_id). A conversion with
    no eligible touchpoint is still listed, with a null touchpoint_id.
    Every conversion is here, valid or not: filter on is_valid for the seed's
    Conversion.objects.valid().with_attribution(...).
#}
with

conversions as (
    select * from {{ ref('trackhouse', 'conversions') }}
),

touchpoints as (
    select * from {{ ref('trackhouse', 'touchpoints') }}
),

matched as (
    select * from {{ ref('trackhouse', 'int_conversion_touchpoints_matched') }}
),

attribution_models as (
    select 'first_touch' as attribution_model
    union all
    select 'last_touch' as attribution_model
),

chosen as (
    select
        'first_touch' as attribution_model,
        conversion_id,
        touchpoint_id,
        window_days,
        touchpoint_count
    from matched
    where touchpoint_position = 1

    union all

    select
        'last_touch' as attribution_model,
        conversion_id,
        touchpoint_id,
        window_days,
        touchpoint_count
    from matched
    where touchpoint_position = touchpoint_count
),

final as (
    select
        conversions.conversion_id,
        attribution_models.attribution_model,
        touchpoints.touchpoint_id,
        touchpoints.touched_at,
        touchpoints.utm_source,
        touchpoints.utm_medium,
        touchpoints.utm_campaign,
        touchpoints.utm_term,
        touchpoints.utm_content,
        touchpoints.fbclid,
        touchpoints.gclid,
        touchpoints.msclkid,
        touchpoints.ttclid,
        touchpoints.li_fat_id,
        touchpoints.twclid,
        touchpoints.igshid,
        touchpoints.referrer,
        touchpoints.channel,
        conversions.stitched_id,
        conversions.event,
        conversions.converted_at,
        conversions.value,
        conversions.currency,
        conversions.is_valid,
        chosen.window_days,
        coalesce(chosen.touchpoint_count, 0) as eligible_touchpoints
    from conversions
    cross join attribution_models
    left join chosen
        on
            conversions.conversion_id = chosen.conversion_id
            and attribution_models.attribution_model = chosen.attribution_model
    left join touchpoints
        on chosen.touchpoint_id = touchpoints.touchpoint_id
)

select * from final
