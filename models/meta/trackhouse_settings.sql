{#
    The settings (dbt vars) this build used, one row, so that the query API and
    the CLI default to exactly what the marts were computed with — also when
    the vars were given on the command line (`dbt build --vars ...`).
#}

with

settings as (
    select
        cast('{{ var("report_timezone", "UTC") }}' as {{ dbt.type_string() }}) as report_timezone,
        {{ trackhouse.as_of_date() }} as as_of_date,
        {{ 'true' if var('as_of', none) else 'false' }} as is_as_of_set,
        cast({{ "'" ~ var('subscription_start') ~ "'" if var('subscription_start', none) else 'null' }} as {{ dbt.type_string() }})
            as subscription_start,
        cast({{ var('window_days', 30) }} as integer) as window_days,
        cast('{{ tojson(var("source_windows", {})) }}' as {{ dbt.type_string() }}) as source_windows_json,
        cast('{{ var("currency", "EUR") }}' as {{ dbt.type_string() }}) as default_currency,
        cast({{ var('lookback_days', 3) }} as integer) as lookback_days,
        {# retention (docs/privacy.md): read by trackhouse prune; null = keep forever #}
        cast({{ var('raw_retention_days', none) if var('raw_retention_days', none) is not none else 'null' }} as integer)
            as raw_retention_days,
        cast({{ var('url_query_retention_days', none) if var('url_query_retention_days', none) is not none else 'null' }} as integer)
            as url_query_retention_days,
        cast({{ var('user_agent_retention_days', none) if var('user_agent_retention_days', none) is not none else 'null' }} as integer)
            as user_agent_retention_days,
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_string() }}) as built_at,
        {# the one instant every model of this build took "today" from #}
        {{ trackhouse.build_started_at() }} as run_started_at
),

final as (
    select * from settings
)

select * from final
