{#
    The channel paths, one row per step: every conversion's eligible
    touchpoints in attribution order (path_kind 'conversion', path_id = the
    conversion id), and per identity the touchpoints eligible for no valid
    conversion in time order (path_kind 'non_conversion', path_id = the
    stitched id): the journeys that did not end in a conversion. The
    data-driven model and conversion_paths read it.
#}
{{ config(materialized='table') }}

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

conversion_steps as (
    select
        'conversion' as path_kind,
        matched.conversion_id as path_id,
        conversions.is_valid,
        matched.touchpoint_id,
        touchpoints.touched_at,
        touchpoints.channel,
        matched.touchpoint_position as step,
        matched.touchpoint_count as step_count
    from matched
    inner join conversions
        on matched.conversion_id = conversions.conversion_id
    inner join touchpoints
        on matched.touchpoint_id = touchpoints.touchpoint_id
),

converted_touchpoints as (
    select distinct touchpoint_id
    from conversion_steps
    where is_valid
),

unconverted as (
    select touchpoints.*
    from touchpoints
    left join converted_touchpoints
        on touchpoints.touchpoint_id = converted_touchpoints.touchpoint_id
    where converted_touchpoints.touchpoint_id is null
),

non_conversion_steps as (
    select
        'non_conversion' as path_kind,
        stitched_id as path_id,
        cast(null as boolean) as is_valid,
        touchpoint_id,
        touched_at,
        channel,
        row_number() over (
            partition by stitched_id
            order by touched_at, touchpoint_id
        ) as step,
        count(*) over (partition by stitched_id) as step_count
    from unconverted
),

final as (
    select
        cast(path_kind as {{ dbt.type_string() }}) as path_kind,
        path_id,
        is_valid,
        touchpoint_id,
        touched_at,
        channel,
        cast(step as integer) as step,
        cast(step_count as integer) as step_count
    from conversion_steps
    union all
    select
        cast(path_kind as {{ dbt.type_string() }}) as path_kind,
        path_id,
        is_valid,
        touchpoint_id,
        touched_at,
        channel,
        cast(step as integer) as step,
        cast(step_count as integer) as step_count
    from non_conversion_steps
)

select * from final
