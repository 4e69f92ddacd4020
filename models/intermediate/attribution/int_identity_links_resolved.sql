{#
    Where each linked id ends up. An id (an anonymous id, or an alias's
    previousId) is linked to the FIRST id it was identified with; a later,
    different user on the same device gets no merge (django-attribution's
    behaviour). Links are followed to the end of the chain (a -> b -> user),
    whatever the order in which they arrived, so merging is retroactive.
#}
with recursive

links as (
    select * from {{ ref('trackhouse', 'stg_identity_links') }}
),

ranked_links as (
    select
        anonymous_id,
        user_id,
        linked_at,
        row_number() over (
            partition by anonymous_id
            order by linked_at, received_at, {{ trackhouse.byte_order('event_id') }}
        ) as link_rank
    from links
    {# an id linked to itself says nothing #}
    where anonymous_id <> user_id
),

first_links as (
    select
        anonymous_id,
        user_id,
        linked_at
    from ranked_links
    where link_rank = 1
),

{#
    Walk every chain one link per step. The path (ids between unit
    separators) stops a walk that comes back to an id it has visited, so a
    cycle (a -> b -> a) cannot loop; 100 steps is far beyond real chains.
#}
walks as (
    select
        anonymous_id,
        user_id as reached_id,
        1 as steps,
        chr(31) || anonymous_id || chr(31) || user_id || chr(31) as visited
    from first_links

    union all

    select
        walks.anonymous_id,
        next_link.user_id as reached_id,
        walks.steps + 1 as steps,
        walks.visited || next_link.user_id || chr(31) as visited
    from walks
    inner join first_links as next_link
        on walks.reached_id = next_link.anonymous_id
    where
        position(chr(31) || next_link.user_id || chr(31) in walks.visited) = 0
        and walks.steps < 100
),

walk_ends as (
    select
        anonymous_id,
        reached_id,
        steps
    from (
        select
            anonymous_id,
            reached_id,
            steps,
            row_number() over (partition by anonymous_id order by steps desc) as end_rank
        from walks
    ) as ranked_steps
    where end_rank = 1
),

{#
    A walk that ends at an id which still has a link was stopped by a cycle.
    The ids on a cycle are those whose own walk ends right before coming back
    to themselves; every id on or leading into a cycle resolves to the
    smallest id of the cycle, so they all agree.
#}
cycle_ids as (
    select walk_ends.anonymous_id as cycle_id
    from walk_ends
    inner join first_links
        on walk_ends.reached_id = first_links.anonymous_id
    where first_links.user_id = walk_ends.anonymous_id
),

reachable as (
    select
        anonymous_id,
        reached_id
    from walks

    union all

    select
        anonymous_id,
        anonymous_id as reached_id
    from first_links
),

cycle_representatives as (
    select
        reachable.anonymous_id,
        min(reachable.reached_id) as representative_id
    from reachable
    inner join cycle_ids
        on reachable.reached_id = cycle_ids.cycle_id
    group by reachable.anonymous_id
),

final as (
    select
        first_links.anonymous_id,
        coalesce(cycle_representatives.representative_id, walk_ends.reached_id) as user_id,
        first_links.user_id as first_linked_id,
        first_links.linked_at,
        walk_ends.steps as chain_length,
        cycle_representatives.representative_id is not null as is_in_cycle
    from first_links
    inner join walk_ends
        on first_links.anonymous_id = walk_ends.anonymous_id
    left join cycle_representatives
        on first_links.anonymous_id = cycle_representatives.anonymous_id
)

select * from final
