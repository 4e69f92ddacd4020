{#
    One row per conversion: its events folded. The first event that names the
    conversion gives its time, identity and event name; every state field
    (value, currency, is_confirmed, is_active, source_object, custom data)
    takes the latest value any event stated — a null in the raw table means
    "not stated", not "set to null". Updates for a conversion id that has no
    named event yet wait in the raw table until it arrives.
#}
{%- set state_fields = [
    'value', 'currency', 'is_confirmed', 'is_active', 'source_object', 'custom_data_json',
] -%}

with

conversion_events as (
    select * from {{ ref('trackhouse', 'stg_conversion_events') }}
),

ranked_creations as (
    select
        conversion_id,
        event,
        anonymous_id,
        user_id,
        occurred_at,
        row_number() over (
            partition by conversion_id
            order by occurred_at, received_at, {{ trackhouse.byte_order('event_id') }}
        ) as creation_rank
    from conversion_events
    where event is not null
),

creations as (
    select
        conversion_id,
        event,
        anonymous_id,
        user_id,
        occurred_at as converted_at
    from ranked_creations
    where creation_rank = 1
),

{# Latest stated value per field: stated rows first, then the latest timestamp. #}
stated_states as (
    select
        conversion_id,
        {%- for field in state_fields %}
            first_value({{ field }}) over (
                partition by conversion_id
                order by
                    case when {{ field }} is null then 1 else 0 end,
                    occurred_at desc,
                    received_at desc,
                    {{ trackhouse.byte_order('event_id') }} desc
            ) as stated_{{ field }},
        {%- endfor %}
        max(occurred_at) over (partition by conversion_id) as updated_at,
        count(*) over (partition by conversion_id) as event_count,
        row_number() over (
            partition by conversion_id order by {{ trackhouse.byte_order('event_id') }}
        ) as row_rank
    from conversion_events
),

states as (
    select
        conversion_id,
        {%- for field in state_fields %}
            stated_{{ field }},
        {%- endfor %}
        updated_at,
        event_count
    from stated_states
    where row_rank = 1
),

final as (
    select
        creations.conversion_id,
        creations.event,
        creations.anonymous_id,
        creations.user_id,
        creations.converted_at,
        states.stated_value as value,
        states.stated_currency as currency,
        {# the seed's defaults: confirmed and active unless stated otherwise #}
        coalesce(states.stated_is_confirmed, true) as is_confirmed,
        coalesce(states.stated_is_active, true) as is_active,
        states.stated_custom_data_json as custom_data_json,
        states.stated_source_object as source_object,
        states.updated_at,
        states.event_count
    from creations
    inner join states
        on creations.conversion_id = states.conversion_id
)

select * from final
