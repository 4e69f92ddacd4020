{#
    One row per conversion and model (first_touch, last_touch): the
    touchpoint that gets the credit, with its 12 tracking parameters and
    referrer. first_touch = the earliest eligible touchpoint, last_touch =
    the latest, in the order (touched_at, touchpoint_id). A conversion with
    no eligible touchpoint is still listed, with a null touchpoint_id.
    Every conversion is here, valid or not: filter on is_valid for the seed's
    Conversion.objects.valid().with_attribution(...).

    Linear in touchpoints and conversions, whatever one identity holds: the
    eligible pairs (int_conversion_touchpoints_matched, which the multi-touch
    marts need) are never formed here. An identity's touchpoints with the same
    window length are numbered 1, 2, ... in the order (touched_at,
    touchpoint_id); each conversion places two marks on that timeline, at the
    conversion (exclusive) and window_days before it (inclusive), and a running
    maximum of the numbers reads, at each mark, how many of those touchpoints
    lie before it. The eligible ones are the numbers between the two: the
    first and last of them are the candidates, their difference the count.
    Windows per utm_source give a few timelines per identity; the earliest and
    latest candidate over them win. (The same rows as the pairs would give:
    tests/test_attribution.py compares them.)
#}
with

conversions as (
    select * from {{ ref('trackhouse', 'conversions') }}
),

touchpoints as (
    select * from {{ ref('trackhouse', 'touchpoints') }}
),

attribution_models as (
    select 'first_touch' as attribution_model
    union all
    select 'last_touch' as attribution_model
),

windowed_touchpoints as (
    select
        touchpoint_id,
        stitched_id,
        touched_at,
        {{ trackhouse.attribution_window_days('utm_source') }} as window_days
    from touchpoints
),

sequenced_touchpoints as (
    select
        *,
        row_number() over (
            partition by stitched_id, window_days
            order by touched_at, {{ trackhouse.byte_order('touchpoint_id') }}
        ) as touchpoint_seq
    from windowed_touchpoints
),

timelines as (
    select distinct
        stitched_id,
        window_days
    from windowed_touchpoints
),

{# each conversion's marks on each timeline of its identity #}
marks as (
    select
        conversions.conversion_id,
        timelines.stitched_id,
        timelines.window_days,
        conversions.converted_at as marked_at,
        'upper' as mark
    from conversions
    inner join timelines
        on conversions.stitched_id = timelines.stitched_id

    union all

    select
        conversions.conversion_id,
        timelines.stitched_id,
        timelines.window_days,
        {{ dbt.dateadd('day', '-1 * timelines.window_days', 'conversions.converted_at') }} as marked_at,
        'lower' as mark
    from conversions
    inner join timelines
        on conversions.stitched_id = timelines.stitched_id
),

{# a mark sorts before touchpoints at its own instant (kind 0 before 1): the
   upper mark excludes them, the lower one counts them as eligible #}
timeline_rows as (
    select
        stitched_id,
        window_days,
        touched_at as timeline_at,
        1 as kind,
        touchpoint_seq,
        cast(null as {{ dbt.type_string() }}) as conversion_id,
        cast(null as {{ dbt.type_string() }}) as mark
    from sequenced_touchpoints

    union all

    select
        stitched_id,
        window_days,
        marked_at as timeline_at,
        0 as kind,
        cast(null as bigint) as touchpoint_seq,
        conversion_id,
        mark
    from marks
),

read_marks as (
    select
        conversion_id,
        stitched_id,
        window_days,
        kind,
        mark,
        coalesce(max(touchpoint_seq) over (
            partition by stitched_id, window_days
            order by timeline_at, kind
            rows between unbounded preceding and current row
        ), 0) as touchpoints_before
    from timeline_rows
),

timeline_ranges as (
    select
        conversion_id,
        stitched_id,
        window_days,
        max(case when mark = 'lower' then touchpoints_before end) as seq_before_first,
        max(case when mark = 'upper' then touchpoints_before end) as last_seq
    from read_marks
    where kind = 0
    group by conversion_id, stitched_id, window_days
),

{# the timelines with eligible touchpoints, each with its conversion's count (a window
   over them: an aggregate joined back was a join PostgreSQL misjudged and looped over) #}
eligible_ranges as (
    select
        *,
        cast(sum(last_seq - seq_before_first) over (partition by conversion_id) as bigint)
            as touchpoint_count
    from timeline_ranges
    where last_seq > seq_before_first
),

{# per model, the number of each timeline's candidate: its first or its last eligible
   touchpoint. A union, not a join with attribution_models and a case: PostgreSQL put
   such a case into the join below as a filter and looped over every pair. #}
range_ends as (
    select
        'first_touch' as attribution_model,
        conversion_id,
        stitched_id,
        window_days,
        touchpoint_count,
        seq_before_first + 1 as candidate_seq
    from eligible_ranges

    union all

    select
        'last_touch' as attribution_model,
        conversion_id,
        stitched_id,
        window_days,
        touchpoint_count,
        last_seq as candidate_seq
    from eligible_ranges
),

candidates as (
    select
        range_ends.attribution_model,
        range_ends.conversion_id,
        range_ends.touchpoint_count,
        sequenced_touchpoints.touchpoint_id,
        sequenced_touchpoints.touched_at,
        sequenced_touchpoints.window_days
    from range_ends
    inner join sequenced_touchpoints
        on
            range_ends.stitched_id = sequenced_touchpoints.stitched_id
            and range_ends.window_days = sequenced_touchpoints.window_days
            and range_ends.candidate_seq = sequenced_touchpoints.touchpoint_seq
),

ranked as (
    select
        *,
        row_number() over (
            partition by conversion_id, attribution_model
            order by touched_at, {{ trackhouse.byte_order('touchpoint_id') }}
        ) as earliest,
        row_number() over (
            partition by conversion_id, attribution_model
            order by touched_at desc, {{ trackhouse.byte_order('touchpoint_id') }} desc
        ) as latest
    from candidates
),

{# over an identity's timelines, the earliest first and the latest last candidate #}
chosen as (
    select
        ranked.attribution_model,
        ranked.conversion_id,
        ranked.touchpoint_id,
        ranked.window_days,
        ranked.touchpoint_count
    from ranked
    where
        (ranked.attribution_model = 'first_touch' and ranked.earliest = 1)
        or (ranked.attribution_model = 'last_touch' and ranked.latest = 1)
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
