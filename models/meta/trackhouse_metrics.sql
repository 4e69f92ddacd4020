{#
    The metric registry: trackhouse's built-in metrics and your own, the rows of the
    seeds named by the var `trackhouse_metrics_seeds` (a root project that installs
    trackhouse as a package registers its metrics there, without editing the package).
#}

with

registry as (
    {{ trackhouse.registry_union(
        ref('trackhouse', 'trackhouse_builtin_metrics'),
        'trackhouse_metrics_seeds',
        ['domain', 'ref', 'name', 'description']
    ) }}
),

final as (
    select * from registry
)

select * from final
