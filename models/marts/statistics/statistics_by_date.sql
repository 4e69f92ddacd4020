{{
    config(
        incremental_strategy='statistics_replace',
        unique_key=['metric', 'period', 'date'],
        on_schema_change='fail',
        post_hook="{{ trackhouse.delete_vanished_statistics() }}",
        pre_hook="{{ trackhouse.reset_after_deletions() }}",
    )
}}

{#
    One row per metric, period and date: the built-in metrics, the models
    listed in var('statistics_by_date_models') and recorded statistics without
    an object. The body is shared with statistics_by_date_and_object
    (macros/statistics/statistics_mart.sql), so the two cannot drift apart.
#}

{{ trackhouse.statistics_mart(by_object=false) }}
