{#
    The statistics domains: trackhouse's built-in domains and your own, the rows of
    the seeds named by the var `trackhouse_domains_seeds`.
#}

with

registry as (
    {{ trackhouse.registry_union(
        ref('trackhouse', 'trackhouse_builtin_domains'),
        'trackhouse_domains_seeds',
        ['ref', 'name']
    ) }}
),

final as (
    select * from registry
)

select * from final
