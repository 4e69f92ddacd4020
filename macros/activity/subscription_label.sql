{#
    django-souvenirs' labels of a subscription period, from the 0-based month
    offset of its start (see months_between_clamped) and its kind:
    month -> 'Y01 M01', quarter -> 'Y01 Q1', year -> 'Y01'. `period_kind` is a
    SQL expression ('month' in quotes for a literal). Years past 99 keep all
    their digits (Y100), as the seed's '{:02d}' does.
#}
{% macro subscription_label(month_offset, period_kind) -%}
    {{ return(adapter.dispatch('subscription_label', 'trackhouse')(month_offset, period_kind)) }}
{%- endmacro %}

{% macro default__subscription_label(month_offset, period_kind) -%}
    {%- set year_number = 'cast(floor((' ~ month_offset ~ ') / 12.0) as integer) + 1' -%}
    {%- set month_number = 'mod(cast(' ~ month_offset ~ ' as integer), 12) + 1' -%}
    {%- set quarter_number = 'cast(floor(mod(cast(' ~ month_offset ~ ' as integer), 12) / 3.0) as integer) + 1' -%}
    (
        'Y' || {{ trackhouse.zero_pad(year_number) }}
        || case {{ period_kind }}
            when 'month' then ' M' || {{ trackhouse.zero_pad(month_number) }}
            when 'quarter' then ' Q' || cast({{ quarter_number }} as {{ dbt.type_string() }})
            else ''
        end
    )
{%- endmacro %}
