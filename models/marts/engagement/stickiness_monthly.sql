{#
    How sticky each calendar month (report time zone) was: the distribution of
    active days per user. One row per month and number of active days (1 to
    31) that at least one user had, with the users and their share of the
    month's active users. The month holding as_of counts up to as_of.
#}
with

activity_days as (
    select * from {{ ref('trackhouse', 'int_activity_days_localized') }}
),

user_months as (
    select
        user_id,
        {{ trackhouse.period_start('month', 'activity_date') }} as month_start_date,
        count(*) as active_days
    from activity_days
    where activity_date < {{ trackhouse.report_end_date() }}
    group by user_id, {{ trackhouse.period_start('month', 'activity_date') }}
),

distribution as (
    select
        month_start_date,
        active_days,
        count(*) as users
    from user_months
    group by month_start_date, active_days
),

final as (
    select
        month_start_date,
        case
            when {{ trackhouse.add_months_clamped('month_start_date', 1) }} < {{ trackhouse.report_end_date() }}
                then {{ trackhouse.add_months_clamped('month_start_date', 1) }}
            else {{ trackhouse.report_end_date() }}
        end as month_end_date,
        cast(active_days as integer) as active_days,
        cast(users as bigint) as users,
        cast(sum(users) over (partition by month_start_date) as bigint) as active_users,
        cast(
            {{ trackhouse.round_double(
                'cast(users as ' ~ trackhouse.double_type() ~ ') / sum(users) over (partition by month_start_date)', 6) }}
            as numeric(9, 6)
        ) as user_share
    from distribution
)

select * from final
