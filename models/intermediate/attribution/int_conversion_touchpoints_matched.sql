{#
    One row per conversion and each touchpoint eligible for it: same stitched
    identity, strictly before the conversion, and no older than the
    touchpoint's window (source_windows[utm_source], else the default window;
    vars). The lower bound is inclusive, so a window of 0 days leaves
    nothing eligible. Touchpoints are numbered per conversion in the order
    (touched_at, touchpoint_id): ties are broken by id, deterministically.
    A table, not a view: conversion_attribution and attribution_credits (four
    times) both read it, and the range join is the expensive part.
#}
{{ config(materialized='table') }}

with

conversions as (
    select * from {{ ref('trackhouse', 'conversions') }}
),

touchpoints as (
    select * from {{ ref('trackhouse', 'touchpoints') }}
),

windowed_touchpoints as (
    select
        *,
        {{ trackhouse.attribution_window_days('utm_source') }} as window_days
    from touchpoints
),

matched as (
    select
        conversions.conversion_id,
        windowed_touchpoints.touchpoint_id,
        windowed_touchpoints.touched_at,
        windowed_touchpoints.window_days
    from conversions
    inner join windowed_touchpoints
        on
            conversions.stitched_id = windowed_touchpoints.stitched_id
            and windowed_touchpoints.touched_at < conversions.converted_at
            and windowed_touchpoints.touched_at
            >= {{ dbt.dateadd('day', '-1 * windowed_touchpoints.window_days', 'conversions.converted_at') }}
),

final as (
    select
        conversion_id,
        touchpoint_id,
        touched_at,
        window_days,
        row_number() over (
            partition by conversion_id
            order by touched_at, {{ trackhouse.byte_order('touchpoint_id') }}
        ) as touchpoint_position,
        count(*) over (partition by conversion_id) as touchpoint_count
    from matched
)

select * from final
