{#
    One row per conversion with its ordered channel path (its eligible
    touchpoints, as attributed), and one row per identity with a journey that
    did not convert (its touchpoints eligible for no valid conversion). The
    data-driven model learns from both (int_channel_removal_effects).
    last_non_direct_* is last touch ignoring Direct touchpoints unless the
    path has nothing else (GA4's last non-direct click).
#}
with

conversions as (
    select * from {{ ref('trackhouse', 'conversions') }}
),

steps as (
    select * from {{ ref('trackhouse', 'int_channel_paths_sequenced') }}
),

{# One pass over the steps: the path, its counts and times, its first and last
   channel (step 1 and step step_count), and which step is the last non-direct one;
   then one join for that step's channel and touchpoint. #}
summaries as (
    select
        path_kind,
        path_id,
        {{ dbt.listagg('channel', "' > '", 'order by step') }} as channel_path,
        count(*) as touch_count,
        min(touched_at) as first_touched_at,
        max(touched_at) as last_touched_at,
        max(case when step = 1 then channel end) as first_channel,
        max(case when step = step_count then channel end) as last_channel,
        coalesce(
            max(case when channel <> 'Direct' then step end),
            max(step)
        ) as last_non_direct_step
    from steps
    group by path_kind, path_id
),

ends as (
    select
        summaries.*,
        last_non_directs.channel as last_non_direct_channel,
        last_non_directs.touchpoint_id as last_non_direct_touchpoint_id
    from summaries
    inner join steps as last_non_directs
        on
            summaries.path_kind = last_non_directs.path_kind
            and summaries.path_id = last_non_directs.path_id
            and summaries.last_non_direct_step = last_non_directs.step
),

converting as (
    select
        'conversion' as path_kind,
        conversions.conversion_id as path_id,
        conversions.conversion_id,
        conversions.stitched_id,
        conversions.event,
        conversions.converted_at,
        conversions.value,
        conversions.currency,
        conversions.is_valid,
        ends.channel_path,
        coalesce(ends.touch_count, 0) as touch_count,
        ends.first_touched_at,
        ends.last_touched_at,
        conversions.converted_at as ended_at,
        ends.first_channel,
        ends.last_channel,
        ends.last_non_direct_channel,
        ends.last_non_direct_touchpoint_id
    from conversions
    left join ends
        on
            ends.path_kind = 'conversion'
            and conversions.conversion_id = ends.path_id
),

non_converting as (
    select
        'non_conversion' as path_kind,
        path_id,
        cast(null as {{ dbt.type_string() }}) as conversion_id,
        path_id as stitched_id,
        cast(null as {{ dbt.type_string() }}) as event,
        cast(null as timestamp) as converted_at,
        cast(null as numeric(18, 2)) as value,
        cast(null as {{ dbt.type_string() }}) as currency,
        cast(null as boolean) as is_valid,
        channel_path,
        touch_count,
        first_touched_at,
        last_touched_at,
        last_touched_at as ended_at,
        first_channel,
        last_channel,
        last_non_direct_channel,
        last_non_direct_touchpoint_id
    from ends
    where path_kind = 'non_conversion'
),

unioned as (
    select * from converting
    union all
    select * from non_converting
),

final as (
    select
        cast(path_kind as {{ dbt.type_string() }}) as path_kind,
        path_id,
        conversion_id,
        stitched_id,
        event,
        converted_at,
        value,
        currency,
        is_valid,
        channel_path,
        cast(touch_count as integer) as touch_count,
        first_touched_at,
        last_touched_at,
        cast(
            {{ trackhouse.round_double(
                '(cast(' ~ trackhouse.epoch_seconds('ended_at') ~ ' as ' ~ trackhouse.double_type() ~ ')'
                ~ ' - cast(' ~ trackhouse.epoch_seconds('first_touched_at') ~ ' as ' ~ trackhouse.double_type() ~ ')) / 86400.0', 2) }}
            as numeric(12, 2)
        ) as days_from_first_touch,
        first_channel,
        last_channel,
        last_non_direct_channel,
        last_non_direct_touchpoint_id
    from unioned
)

select * from final
