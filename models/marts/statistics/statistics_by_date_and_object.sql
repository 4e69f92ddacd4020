{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['metric', 'period', 'date', 'object_type'],
        on_schema_change='fail',
        post_hook="{{ trackhouse.delete_vanished_statistics() }}",
        pre_hook="{{ trackhouse.reset_after_deletions() }}",
    )
}}

{#
    One row per metric, period, date and object: the built-in metrics, the
    models listed in var('statistics_by_date_and_object_models') and recorded
    statistics with an object. delete+insert on (metric, period, date,
    object_type) replaces every object of a recomputed date. The body is shared
    with statistics_by_date (macros/statistics/statistics_mart.sql).
#}

{{ trackhouse.statistics_mart(by_object=true) }}
