{#
    MetricFlow's time spine: one row per local date, from 2000-01-01 to a year after
    the as-of date. Cumulative metrics (active users over 7/28/30 days) join it to
    get one value per date, also on dates without activity.
#}

with

spine as (
    {{ trackhouse.date_spine(
        "cast('2000-01-01' as date)",
        dbt.dateadd('day', 366, trackhouse.as_of_date())
    ) }}
),

final as (
    select date_day from spine
)

select * from final
