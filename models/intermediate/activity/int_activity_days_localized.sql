{#
    One row per user per local date (report time zone) with activity: what the
    usage marts and the statistics count. The rows are kept incrementally by
    int_activity_days_accumulated; this view shows the two columns its readers
    need, so the bookkeeping there can change without touching them.
#}

with

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_accumulated') }}
),

final as (
    select
        user_id,
        activity_date
    from activity_days
)

select * from final
