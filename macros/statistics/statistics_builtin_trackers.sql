{#
    The built-in metrics of SPEC 2.5 as tracker arguments, shared by the two
    statistics marts so the by-date and by-object numbers come from one definition.
    Each entry takes the arguments of track_by_date, plus object_column and
    object_type for track_by_date_and_object; `by_date_where`, when given,
    replaces `where` in statistics_by_date, and `by_date_relation` (a model name)
    replaces `relation` there. active_users has one: by date the accounts do not
    matter, and int_activity_days_localized has the same (user, date) pairs as
    int_activity_days_accounted without its join and distinct (one user-date per
    account there), the largest input of the incremental run's full-history
    comparison. conversion_value has a `by_date_where`: a sum of
    amounts in different currencies means nothing, so statistics_by_date sums
    the conversions in var `currency` only (the default currency); every
    currency has its own rows in statistics_by_date_and_object (object_type
    'currency'). The metrics are rows of the
    trackhouse_metrics seed.
#}
{% macro statistics_builtin_trackers() -%}
    {{ return([
        {
            'metric': 'users.user_count',
            'relation': ref('trackhouse', 'int_user_joins_accounted'),
            'timestamp_column': 'joined_at',
            'count_distinct': 'user_id',
            'object_column': 'account_id',
            'object_type': 'account',
        },
        {
            'metric': 'activity.active_users',
            'relation': ref('trackhouse', 'int_activity_days_accounted'),
            'by_date_relation': 'int_activity_days_localized',
            'date_column': 'activity_date',
            'count_distinct': 'user_id',
            'object_column': 'account_id',
            'object_type': 'account',
        },
        {
            'metric': 'attribution.touchpoint_count',
            'relation': ref('trackhouse', 'touchpoints'),
            'timestamp_column': 'touched_at',
            'count_distinct': 'touchpoint_id',
            'object_column': 'utm_source',
            'object_type': 'utm_source',
        },
        {
            'metric': 'attribution.conversion_count',
            'relation': ref('trackhouse', 'conversions'),
            'timestamp_column': 'converted_at',
            'count_distinct': 'conversion_id',
            'where': 'is_valid',
            'object_column': 'event',
            'object_type': 'event',
        },
        {
            'metric': 'attribution.conversion_value',
            'relation': ref('trackhouse', 'conversions'),
            'timestamp_column': 'converted_at',
            'sum_column': 'value',
            'where': 'is_valid',
            'by_date_where': "is_valid and currency = '" ~ var('currency', 'EUR') ~ "'",
            'object_column': 'currency',
            'object_type': 'currency',
        },
    ]) }}
{%- endmacro %}
