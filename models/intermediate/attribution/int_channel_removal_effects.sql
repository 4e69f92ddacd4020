{#
    The data-driven model: a first-order Markov chain over channel paths, and
    each channel's removal effect.

    States: (start), every channel, and the absorbing (conversion) and (null).
    Every valid conversion's path is (start) -> its channels in attribution
    order -> (conversion); every non-converting path is (start) -> its
    channels -> (null). A transition's probability is its count over the
    count of all transitions leaving the same state.

    P = the probability of reaching (conversion) from (start). Removing a
    channel sends every transition into it to (null); the channel's removal
    effect is 1 - P(without it) / P. P is the (start, conversion) entry of the
    transition matrix raised to the power 2^32: the matrix is squared 32 times
    (a join per squaring on a few hundred rows, squared_transition_matrices),
    so the walk has as good as surely been absorbed, whatever loops the paths
    make. Probabilities are rounded to 15 places after each squaring, so the
    engines agree.
#}
{{ config(materialized='table') }}
{%- set squarings = 32 -%}

with

paths as (
    select * from {{ ref('trackhouse', 'int_channel_paths_sequenced') }}
),

steps as (
    select *
    from paths
    where path_kind = 'non_conversion' or is_valid
),

edges as (
    select
        '(start)' as from_state,
        channel as to_state
    from steps
    where step = 1
    union all
    select
        channel as from_state,
        coalesce(
            lead(channel) over (partition by path_kind, path_id order by step),
            case when path_kind = 'conversion' then '(conversion)' else '(null)' end
        ) as to_state
    from steps
),

transitions as (
    select
        from_state,
        to_state,
        count(*) as transition_count
    from edges
    group by from_state, to_state
),

probabilities as (
    select
        from_state,
        to_state,
        cast(transition_count as {{ trackhouse.double_type() }})
        / sum(transition_count) over (partition by from_state) as probability
    from transitions
),

channels as (
    select distinct channel
    from steps
),

{# '(none)' is the whole chain; every other scenario removes one channel #}
scenarios as (
    select '(none)' as removed_state
    union all
    select channel as removed_state
    from channels
),

matrix_0 as (
    select
        scenarios.removed_state,
        probabilities.from_state,
        case
            when probabilities.to_state = scenarios.removed_state then '(null)'
            else probabilities.to_state
        end as to_state,
        sum(probabilities.probability) as probability
    from scenarios
    cross join probabilities
    where probabilities.from_state <> scenarios.removed_state
    group by
        scenarios.removed_state,
        probabilities.from_state,
        case
            when probabilities.to_state = scenarios.removed_state then '(null)'
            else probabilities.to_state
        end
    union all
    select
        scenarios.removed_state,
        absorbing.state as from_state,
        absorbing.state as to_state,
        1.0 as probability
    from scenarios
    cross join (
        select '(conversion)' as state
        union all
        select '(null)' as state
    ) as absorbing
),

{{ trackhouse.squared_transition_matrices('matrix_0', squarings, 'matrix_squared') }},

conversion_probabilities as (
    select
        scenarios.removed_state,
        coalesce(reached.probability, 0) as conversion_probability
    from scenarios
    left join matrix_squared as reached
        on
            scenarios.removed_state = reached.removed_state
            and reached.from_state = '(start)'
            and reached.to_state = '(conversion)'
),

final as (
    select
        cast(channels.channel as {{ dbt.type_string() }}) as channel,
        {{ trackhouse.round_double('whole.conversion_probability', 12) }} as conversion_probability,
        {{ trackhouse.round_double('removed.conversion_probability', 12) }}
            as conversion_probability_without,
        case
            when whole.conversion_probability > 0
                then {{ trackhouse.round_double(
                    'greatest(0, 1 - removed.conversion_probability / whole.conversion_probability)', 12) }}
            else 0
        end as removal_effect
    from channels
    inner join conversion_probabilities as removed
        on channels.channel = removed.removed_state
    cross join (
        select conversion_probability
        from conversion_probabilities
        where removed_state = '(none)'
    ) as whole
)

select * from final
