{#
    The period-cutting step shared by active_users and usage_subscription_periods.

    A period that is cut at the report end (the day after as_of) counts the
    users active in [start, report end). Its incremental count covers the whole
    period, so the cut count is that count minus the users whose only activity
    in the period came on or after the report end. This macro returns the CTEs
    (no trailing comma) that find those users:
      late_days  - user-days from the report end to the latest cut period's end;
      early_days - the same users' days before the report end, in a cut period;
      late_only  - per cut period (its `period_keys` columns): late_only_users.
    The work grows with the activity after as_of (usually none), not with history.

    Arguments:
      cut_periods    a CTE with period_keys, period_start_date, full_period_end_date
      activity_days  a CTE with user_id, activity_date (local dates)
      period_keys    the columns that identify a period, e.g. ['grain', 'period_start_date']
      members        optional CTE (subscription_key, user_id): count only a
                     period's members (its period_keys must include subscription_key)
#}
{% macro late_only_users(cut_periods, activity_days, period_keys, members=none) -%}
late_days as (
    select
        user_id,
        activity_date
    from {{ activity_days }}
    where
        activity_date >= {{ trackhouse.report_end_date() }}
        and activity_date < (select max(full_period_end_date) from {{ cut_periods }})
),

{# the days of the users in late_days before the report end, in a cut period #}
early_days as (
    select
        user_id,
        activity_date
    from {{ activity_days }}
    where
        activity_date >= (select min(period_start_date) from {{ cut_periods }})
        and activity_date < {{ trackhouse.report_end_date() }}
        and user_id in (select user_id from late_days)
),

late_only as (
    select
        {%- for key in period_keys %}
        {{ cut_periods }}.{{ key }},
        {%- endfor %}
        count(distinct late_days.user_id) as late_only_users
    from {{ cut_periods }}
    {%- if members %}
    inner join {{ members }}
        on {{ cut_periods }}.subscription_key = {{ members }}.subscription_key
    inner join late_days
        on
            {{ members }}.user_id = late_days.user_id
            and late_days.activity_date < {{ cut_periods }}.full_period_end_date
    {%- else %}
    inner join late_days
        on late_days.activity_date < {{ cut_periods }}.full_period_end_date
    {%- endif %}
    where
        not exists (
            select 1
            from early_days
            where
                early_days.user_id = late_days.user_id
                and early_days.activity_date >= {{ cut_periods }}.period_start_date
        )
    group by
        {%- for key in period_keys %}
        {{ cut_periods }}.{{ key }}{{ ',' if not loop.last }}
        {%- endfor %}
)
{%- endmacro %}
