{#
    One row per attributed conversion, model and touchpoint that gets credit:
    the multi-touch view. Models:
      first_touch, last_touch  1.0 to the first / last eligible touchpoint
      linear                   1/n to each of the n eligible touchpoints
      position_based           40% first, 40% last, 20% shared by the middle
                               ones (1 touchpoint: 1.0; 2: 0.5 each)
    Eligibility and order are those of conversion_attribution. Credits are
    rounded to 6 places and values to cents; the last touchpoint of each
    conversion takes the remainder, so per conversion and model the credits
    sum to exactly 1 and attributed values to exactly the conversion's value.
    Conversions without eligible touchpoints have no rows here.
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

shares as (
    select
        'first_touch' as attribution_model,
        matched.*,
        1.0 as raw_credit
    from matched
    where touchpoint_position = 1

    union all

    select
        'last_touch' as attribution_model,
        matched.*,
        1.0 as raw_credit
    from matched
    where touchpoint_position = touchpoint_count

    union all

    select
        'linear' as attribution_model,
        matched.*,
        1.0 / touchpoint_count as raw_credit
    from matched

    union all

    select
        'position_based' as attribution_model,
        matched.*,
        case
            when touchpoint_count = 1 then 1.0
            when touchpoint_count = 2 then 0.5
            when touchpoint_position = 1 or touchpoint_position = touchpoint_count then 0.4
            else 0.2 / (touchpoint_count - 2)
        end as raw_credit
    from matched
),

rounded_shares as (
    select
        *,
        cast(round(raw_credit, 6) as numeric(9, 6)) as rounded_credit,
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
        touchpoints.referrer
    from value_sums
    inner join conversions
        on value_sums.conversion_id = conversions.conversion_id
    inner join touchpoints
        on value_sums.touchpoint_id = touchpoints.touchpoint_id
)

select * from final
