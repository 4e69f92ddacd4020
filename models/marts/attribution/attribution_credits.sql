{#
    One row per attributed conversion, model and touchpoint that gets credit:
    the multi-touch view. Models:
      first_touch, last_touch  1.0 to the first / last eligible touchpoint
      linear                   1/n to each of the n eligible touchpoints
      position_based           40% first, 40% last, 20% shared by the middle
                               ones (1 touchpoint: 1.0; 2: 0.5 each)
      time_decay               weight 2^(-age / half-life) per touchpoint, age =
                               days from the touchpoint to the conversion,
                               half-life = var time_decay_half_life_days (7);
                               credit = weight / sum of the weights
      data_driven              the removal effect of each channel on the path
                               (int_channel_removal_effects) over the sum of
                               the effects of the path's distinct channels,
                               split equally among that channel's touchpoints;
                               all effects 0: 1/n each
    Eligibility and order are those of conversion_attribution. Credits are
    rounded to 6 places and values to cents; the last touchpoint of each
    conversion takes the remainder, so per conversion and model the credits
    sum to exactly 1 and attributed values to exactly the conversion's value.
    Conversions without eligible touchpoints have no rows here.
#}
{%- set matched_columns =
    'conversion_id, touchpoint_id, touched_at, window_days, touchpoint_position, touchpoint_count' -%}

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

removal_effects as (
    select * from {{ ref('trackhouse', 'int_channel_removal_effects') }}
),

{%- set half_life = var('time_decay_half_life_days', 7) %}
{%- if half_life is sameas true or half_life is sameas false
    or (half_life | string | trim | float(-1)) <= 0 %}
    {{ exceptions.raise_compiler_error(
        "var time_decay_half_life_days is " ~ half_life ~ ", but a half-life is a number of "
        ~ "days > 0 (default 7). Fix it in dbt_project.yml or --vars.") }}
{%- endif %}

{# age in days of each touchpoint at its conversion, its channel, and per conversion the
   data-driven denominators: the removal effects of its distinct channels #}
aged as (
    select
        matched.*,
        touchpoints.channel,
        (
            cast({{ trackhouse.epoch_seconds('conversions.converted_at') }} as {{ trackhouse.double_type() }})
            - cast({{ trackhouse.epoch_seconds('matched.touched_at') }} as {{ trackhouse.double_type() }})
        ) / 86400.0 as age_days,
        coalesce(removal_effects.removal_effect, 0) as removal_effect,
        count(*) over (
            partition by matched.conversion_id, touchpoints.channel
        ) as channel_touchpoints
    from matched
    inner join conversions
        on matched.conversion_id = conversions.conversion_id
    inner join touchpoints
        on matched.touchpoint_id = touchpoints.touchpoint_id
    left join removal_effects
        on touchpoints.channel = removal_effects.channel
),

decayed as (
    select
        *,
        exp(-ln(2.0) * age_days / {{ half_life | float }}) as decay_weight,
        sum(case when step_of_channel = 1 then removal_effect else 0 end) over (
            partition by conversion_id
        ) as path_removal_effect
    from (
        select
            *,
            row_number() over (
                partition by conversion_id, channel
                order by touchpoint_position
            ) as step_of_channel
        from aged
    ) as numbered
),

shares as (
    select
        'first_touch' as attribution_model,
        {{ matched_columns }},
        1.0 as raw_credit
    from matched
    where touchpoint_position = 1

    union all

    select
        'last_touch' as attribution_model,
        {{ matched_columns }},
        1.0 as raw_credit
    from matched
    where touchpoint_position = touchpoint_count

    union all

    select
        'linear' as attribution_model,
        {{ matched_columns }},
        1.0 / touchpoint_count as raw_credit
    from matched

    union all

    select
        'position_based' as attribution_model,
        {{ matched_columns }},
        case
            when touchpoint_count = 1 then 1.0
            when touchpoint_count = 2 then 0.5
            when touchpoint_position = 1 or touchpoint_position = touchpoint_count then 0.4
            else 0.2 / (touchpoint_count - 2)
        end as raw_credit
    from matched

    union all

    select
        'time_decay' as attribution_model,
        {{ matched_columns }},
        decay_weight / sum(decay_weight) over (partition by conversion_id) as raw_credit
    from decayed

    union all

    select
        'data_driven' as attribution_model,
        {{ matched_columns }},
        case
            when path_removal_effect > 0
                then removal_effect / path_removal_effect / channel_touchpoints
            else 1.0 / touchpoint_count
        end as raw_credit
    from decayed
),

rounded_shares as (
    select
        *,
        cast({{ trackhouse.round_double('raw_credit', 6) }} as numeric(9, 6)) as rounded_credit,
        row_number() over (
            partition by conversion_id, attribution_model
            order by touchpoint_position desc
        ) as reverse_position
    from shares
),

credit_sums as (
    select
        *,
        sum(rounded_credit) over (
            partition by conversion_id, attribution_model
        ) as rounded_credit_sum
    from rounded_shares
),

credited as (
    select
        *,
        case
            when reverse_position = 1 then 1 - (rounded_credit_sum - rounded_credit)
            else rounded_credit
        end as exact_credit
    from credit_sums
),

valued as (
    select
        credited.*,
        conversions.value,
        cast(round(conversions.value * credited.exact_credit, 2) as numeric(18, 2)) as rounded_value
    from credited
    inner join conversions
        on credited.conversion_id = conversions.conversion_id
),

value_sums as (
    select
        *,
        sum(rounded_value) over (
            partition by conversion_id, attribution_model
        ) as rounded_value_sum
    from valued
),

final as (
    select
        value_sums.conversion_id,
        value_sums.attribution_model,
        value_sums.touchpoint_id,
        touchpoints.touched_at,
        cast(value_sums.touchpoint_position as integer) as touchpoint_position,
        cast(value_sums.touchpoint_count as integer) as touchpoint_count,
        cast(value_sums.exact_credit as numeric(9, 6)) as credit,
        cast(
            case
                when value_sums.reverse_position = 1
                    then value_sums.value - (value_sums.rounded_value_sum - value_sums.rounded_value)
                else value_sums.rounded_value
            end as numeric(18, 2)
        ) as attributed_value,
        conversions.currency,
        conversions.is_valid,
        conversions.stitched_id,
        conversions.event,
        conversions.converted_at,
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
        touchpoints.channel
    from value_sums
    inner join conversions
        on value_sums.conversion_id = conversions.conversion_id
    inner join touchpoints
        on value_sums.touchpoint_id = touchpoints.touchpoint_id
)

select * from final
