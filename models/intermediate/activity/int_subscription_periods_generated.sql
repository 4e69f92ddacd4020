{#
    One row per subscription (whole site, each account) per period kind
    (month, quarter, year) per period, from the subscription's start up to the
    report end. Period n (1-based) starts at anchor + (n - 1) * k months and
    ends at anchor + n * k months (k = 1, 3, 12), each boundary computed from
    the anchor and clamped to the month's length: Jan 31 -> Feb 28 -> Mar 31 ->
    Apr 30. The last period is cut at the report end (the day after as_of);
    full_period_end_date is where it would end uncut.
#}

with

subscriptions as (
    select * from {{ ref('trackhouse', 'int_subscriptions_anchored') }}
),

period_kinds as (
    select
        'month' as period_kind,
        1 as months_per_period
    union all
    select
        'quarter' as period_kind,
        3 as months_per_period
    union all
    select
        'year' as period_kind,
        12 as months_per_period
),

report_end as (
    select {{ trackhouse.report_end_date() }} as report_end_date
),

{# How many periods of each kind have started by the last reported date. #}
period_counts as (
    select
        subscriptions.account_id,
        subscriptions.subscription_key,
        subscriptions.subscription_start_date,
        period_kinds.period_kind,
        period_kinds.months_per_period,
        report_end.report_end_date,
        cast(floor(
            {{ trackhouse.months_between_clamped(
                'subscriptions.subscription_start_date',
                trackhouse.as_of_date()) }} / (1.0 * period_kinds.months_per_period)
        ) as integer) as last_period_offset
    from subscriptions
    cross join period_kinds
    cross join report_end
    where subscriptions.subscription_start_date < report_end.report_end_date
),

period_offsets as (
    select
        period_counts.*,
        {{ trackhouse.expand_series(0, 'last_period_offset') }} as period_offset
    from period_counts
),

bounded as (
    select
        account_id,
        subscription_key,
        subscription_start_date,
        period_kind,
        months_per_period,
        cast(period_offset + 1 as integer) as period_index,
        cast(period_offset * months_per_period as integer) as start_month_offset,
        {{ trackhouse.add_months_clamped(
            'subscription_start_date', 'period_offset * months_per_period') }} as period_start_date,
        {{ trackhouse.add_months_clamped(
            'subscription_start_date', '(period_offset + 1) * months_per_period') }} as boundary_date,
        report_end_date
    from period_offsets
),

final as (
    select
        account_id,
        subscription_key,
        subscription_start_date,
        period_kind,
        months_per_period,
        period_index,
        start_month_offset,
        period_start_date,
        case
            when boundary_date < report_end_date then boundary_date
            else report_end_date
        end as period_end_date,
        boundary_date as full_period_end_date,
        {{ trackhouse.subscription_label('start_month_offset', 'period_kind') }} as label
    from bounded
)

select * from final
