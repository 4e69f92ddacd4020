{#
    One row per conversion and each touchpoint eligible for it: same stitched
    identity, strictly before the conversion, and no older than the
    touchpoint's window (source_windows[utm_source], else the default window;
    vars). The lower bound is inclusive, so a window of 0 days leaves
    nothing eligible. Touchpoints are numbered per conversion in the order
    (touched_at, touchpoint_id): ties are broken by id, deterministically.
    A table, not a view: attribution_credits (four times) and
    int_channel_paths_sequenced read it, and the range join is the expensive part.
    (conversion_attribution finds first and last touch without these pairs.)

    The join's keys: the identity and a time bucket as wide as the widest window
    (whole seconds since 1970 divided by it). An eligible touchpoint lies in the
    conversion's bucket or the one before, so each conversion looks in those two.
    Joined on the identity alone, a "hot" identity (a kiosk, a QA user, an
    `undefined` anonymous id) paired every conversion with every touchpoint of its
    whole history before the window filtered them: quadratic in its history. Now
    the work is bounded by what lies within twice the widest window.
#}
{{ config(materialized='table') }}
{%- set bucket_seconds = 86400 * ([trackhouse.attribution_widest_window_days(), 1] | max) -%}
{%- set bucket = 'cast(floor(floor({}) / ' ~ bucket_seconds ~ ') as bigint)' -%}

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
        {{ trackhouse.attribution_window_days('utm_source') }} as window_days,
        {{ bucket.format(trackhouse.epoch_seconds('touched_at')) }} as time_bucket
    from touchpoints
),

{# each conversion once for its own bucket and once for the one before #}
bucketed_conversions as (
    select
        conversions.conversion_id,
        conversions.stitched_id,
        conversions.converted_at,
        {{ bucket.format(trackhouse.epoch_seconds('conversions.converted_at')) }} - shifts.shift as time_bucket
    from conversions
    cross join (
        select 0 as shift
        union all
        select 1 as shift
    ) as shifts
),

matched as (
    select
        conversions.conversion_id,
        windowed_touchpoints.touchpoint_id,
        windowed_touchpoints.touched_at,
        windowed_touchpoints.window_days
    from bucketed_conversions as conversions
    inner join windowed_touchpoints
        on
            conversions.stitched_id = windowed_touchpoints.stitched_id
            and conversions.time_bucket = windowed_touchpoints.time_bucket
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
