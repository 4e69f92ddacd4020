{{
    config(
        incremental_strategy='statistics_replace',
        unique_key=['metric', 'period', 'date', 'object_type'],
        on_schema_change='fail',
        post_hook="{{ trackhouse.delete_vanished_statistics() }}",
        pre_hook="{{ trackhouse.reset_after_deletions() }}",
    )
}}

-- depends_on: {{ ref('trackhouse', 'statistics_object_series') }}

{#
    One row per metric, period, date and object where the object has data in
    the period's window (sparse; statistics_object_series lists the series the
    query API fills in): the built-in metrics, the models listed in
    var('statistics_by_date_and_object_models') and recorded statistics with an
    object. It depends on statistics_object_series so that a build of
    +statistics_by_date_and_object also builds the series. delete+insert on
    (metric, period, date, object_type) replaces every object of a recomputed
    date (strategy statistics_replace: the delete is a semi join, see
    macros/statistics/get_incremental_statistics_replace_sql.sql). The body is shared with statistics_by_date
    (macros/statistics/statistics_mart.sql).
#}

{{ trackhouse.statistics_mart(by_object=true) }}
