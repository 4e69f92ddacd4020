{{
    config(
        materialized='table',
    )
}}

{#
    One row per series of statistics_by_date_and_object (metric, period,
    object): its first date and the as-of date. The query API fills the dates
    the sparse mart leaves out from these (macros/statistics/statistics_object_series.sql).
#}

{{ trackhouse.statistics_object_series() }}
