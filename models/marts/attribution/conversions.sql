{#
    One row per conversion in its current state, belonging to its stitched
    identity. value has 2 decimal places; a value too large for
    numeric(18,2) (10^16 or more) cannot be money and is left out (null)
    rather than failing the build. Valid = active and confirmed.
#}
with

folded_conversions as (
    select * from {{ ref('trackhouse', 'int_conversions_folded') }}
),

resolved_links as (
    select * from {{ ref('trackhouse', 'int_identity_links_resolved') }}
),

final as (
    select
        folded_conversions.conversion_id,
        {{ trackhouse.stitched_id('folded_conversions') }} as stitched_id,
        folded_conversions.anonymous_id,
        folded_conversions.user_id,
        folded_conversions.event,
        folded_conversions.converted_at,
        case
            when abs(folded_conversions.value) < 1e16
                then cast(round(folded_conversions.value, 2) as numeric(18, 2))
        end as value,
        coalesce(folded_conversions.currency, '{{ var("currency", "EUR") | upper }}') as currency,
        folded_conversions.is_confirmed,
        folded_conversions.is_active,
        folded_conversions.is_confirmed and folded_conversions.is_active as is_valid,
        folded_conversions.custom_data_json,
        folded_conversions.source_object,
        folded_conversions.updated_at
    from folded_conversions
    {{ trackhouse.stitching_joins('folded_conversions') }}
)

select * from final
