{#
    The engine behind trackhouse.track_by_date and trackhouse.track_by_date_and_object
    (call those; this one is shared so the two cannot drift apart).

    Returns a `with ... select` of statistic rows (domain, metric, period, date,
    [object_type, object_id,] value) that can be a whole model or the body of a CTE.

    How it stays linear in the data instead of one distinct count per date and period:
    - facts are reduced once to distinct (object, key, date) pairs (counting) or to
      daily sums (summing);
    - a rolling distinct count over N days is the number of "runs" of a key that
      cover the date: a run starts at a pair whose previous pair of the same key is
      N or more days earlier, and ends N days after a pair whose next pair is N or
      more days later. value(d) = runs started up to d - runs ended up to d - N:
      two running sums over a dense date grid and one lag of N rows;
    - a rolling sum over N days is cumsum(d) - cumsum(d - N) on the same grid;
    - lifetime is a running sum of first-seen dates (counting) or of daily sums.

    Incremental (when `stored` is given, by default {{ this }} in an incremental
    run): only dates from `from_date` on are computed, where from_date is the
    earliest of
    - the last stored date minus var('lookback_days'),
    - the earliest date whose freshly counted `day` value differs from the stored
      one (late events of any age, removed data; needs the `day` period),
    - `recompute_from`, a SQL date expression the caller may add.
    Rolling windows then read only facts from from_date - (longest window - 1) on.
    A stored date it no longer produces (after as_of, or from from_date on but
    without data) comes back with a null value: the caller deletes those rows
    (the statistics marts do, in trackhouse.delete_vanished_statistics).
#}
{% macro track_statistics(
    metric,
    relation,
    timestamp_column=none,
    date_column=none,
    count_distinct=none,
    sum_column=none,
    object_column=none,
    object_type=none,
    periods=none,
    where=none,
    stored=none,
    recompute_from=none,
    by_object=false
) -%}
    {%- set caller_name = 'track_by_date_and_object' if by_object else 'track_by_date' -%}
    {%- set known_periods = trackhouse.statistic_periods() -%}
    {%- set periods = periods if periods is not none else known_periods.keys() | list -%}
    {%- if periods is string -%}
        {%- set periods = [periods] -%}
    {%- endif -%}

    {#- Arguments are checked at compile time: a mistake names the argument and the fix. -#}
    {%- set key_pattern = '^[A-Za-z0-9_-]+$' -%}
    {%- set metric_parts = (metric or '').split('.') -%}
    {%- if metric_parts | length != 2
        or not modules.re.match(key_pattern, metric_parts[0])
        or not modules.re.match(key_pattern, metric_parts[1]) -%}
        {{ exceptions.raise_compiler_error(
            caller_name ~ ": metric " ~ (metric | tojson) ~ " must be 'domain.metric' "
            ~ "(the refs of trackhouse_domains and trackhouse_metrics, letters, digits, _ and -), "
            ~ "e.g. metric='shop.order_count'."
        ) }}
    {%- endif -%}
    {%- set domain_ref, metric_ref = metric_parts[0], metric_parts[1] -%}
    {%- if (timestamp_column is none) == (date_column is none) -%}
        {{ exceptions.raise_compiler_error(
            caller_name ~ " (" ~ metric ~ "): give exactly one of timestamp_column "
            ~ "(a UTC timestamp, dated in var('report_timezone')) or date_column (a date)."
        ) }}
    {%- endif -%}
    {%- if (count_distinct is none) == (sum_column is none) -%}
        {{ exceptions.raise_compiler_error(
            caller_name ~ " (" ~ metric ~ "): give exactly one of count_distinct "
            ~ "(the key whose distinct values are counted) or sum_column (the values summed)."
        ) }}
    {%- endif -%}
    {%- if by_object and (object_column is none
        or object_type is none or not modules.re.match(key_pattern, object_type)) -%}
        {{ exceptions.raise_compiler_error(
            caller_name ~ " (" ~ metric ~ "): object_column (the column holding the object id) "
            ~ "and object_type (a label such as 'account': letters, digits, _ and -) are required."
        ) }}
    {%- endif -%}
    {%- if periods | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            caller_name ~ " (" ~ metric ~ "): periods is empty; give some of "
            ~ known_periods.keys() | join(', ') ~ "."
        ) }}
    {%- endif -%}
    {%- for period in periods -%}
        {%- if period not in known_periods -%}
            {{ exceptions.raise_compiler_error(
                caller_name ~ " (" ~ metric ~ "): period " ~ (period | tojson)
                ~ " is not one of " ~ known_periods.keys() | join(', ')
                ~ "; fix the periods argument."
            ) }}
        {%- endif -%}
    {%- endfor -%}
    {%- if periods | unique | list | length != periods | length -%}
        {{ exceptions.raise_compiler_error(
            caller_name ~ " (" ~ metric ~ "): periods " ~ periods | join(', ')
            ~ " names a period twice; list each once."
        ) }}
    {%- endif -%}

    {%- if stored is none and is_incremental() -%}
        {%- set stored = this -%}
    {%- endif -%}
    {%- set incremental = stored is not none and stored is not false -%}
    {%- set counting = count_distinct is not none -%}
    {#- Rolling periods longer than a day; `day` is the daily value itself. -#}
    {%- set rolling = [] -%}
    {%- for period in periods -%}
        {%- if known_periods[period] is not none and known_periods[period] > 1 -%}
            {%- do rolling.append(period) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set windows = [1] -%}
    {%- for period in rolling -%}
        {%- do windows.append(known_periods[period]) -%}
    {%- endfor -%}
    {%- set longest_window = windows | max -%}
    {%- set lookback_days = var('lookback_days', 3) | int -%}
    {%- set object_expression = object_column if by_object else "''" -%}

with

tracker_as_of as (
    select {{ trackhouse.as_of_date() }} as as_of_date
),

tracker_source as (
    select
        {% if timestamp_column is not none -%}
            {{ trackhouse.report_date(timestamp_column) }} as fact_date,
        {%- else -%}
            cast({{ date_column }} as date) as fact_date,
        {%- endif %}
        cast({{ object_expression }} as {{ dbt.type_string() }}) as object_id,
        {% if counting -%}
            {{ count_distinct }} as fact_key
        {%- else -%}
            {{ sum_column }} as fact_value
        {%- endif %}
    from {{ relation }} as tracked
    where
        {{ timestamp_column if timestamp_column is not none else date_column }} is not null
        and {{ count_distinct if counting else sum_column }} is not null
        {%- if by_object %}
            and {{ object_column }} is not null
        {%- endif %}
        {%- if where %}
            and ({{ where }})
        {%- endif %}
),

{# Counting: distinct (object, key, date) pairs; summing: daily sums. Facts after as_of wait. #}
tracker_facts as (
    {%- if counting %}
    select distinct
        object_id,
        fact_key,
        fact_date
    {%- else %}
    select
        object_id,
        fact_date,
        sum(fact_value) as fact_value
    {%- endif %}
    from tracker_source
    where fact_date <= (select tracker_as_of.as_of_date from tracker_as_of)
    {%- if not counting %}
    group by object_id, fact_date
    {%- endif %}
),

{# The `day` value of every (object, date) with data, over all history. #}
tracker_daily as (
    select
        object_id,
        fact_date,
        {{ 'count(*)' if counting else 'sum(fact_value)' }} as day_value
    from tracker_facts
    group by object_id, fact_date
),

{# An object has rows from its first date on (SPEC: objects with data up to the date). #}
tracker_objects as (
    select
        object_id,
        min(fact_date) as first_date
    from tracker_daily
    group by object_id
),

{%- if incremental %}

{# Only the `day` rows are needed (to compare and for the last date), when day is tracked. #}
tracker_stored as (
    select
        {{ 'cast(object_id as ' ~ dbt.type_string() ~ ')' if by_object else "cast('' as " ~ dbt.type_string() ~ ")" }} as object_id,
        date as stored_date,
        value as stored_value
    from {{ stored }} as stored_rows
    where
        domain = '{{ domain_ref }}'
        and metric = '{{ metric_ref }}'
        {%- if by_object %}
        and object_type = '{{ object_type }}'
        {%- endif %}
        {%- if 'day' in periods %}
        and period = 'day'
        {%- endif %}
),

{#
    Where the fresh daily values disagree with the stored `day` rows, something
    changed: a late event, a removed or re-dated fact. A stored value that is null
    (e.g. overridden by a recorded statistic) is not compared.
#}
tracker_changes as (
    {%- if 'day' in periods %}
    select min(coalesce(fresh.fact_date, tracker_stored.stored_date)) as changed_date
    from tracker_daily as fresh
    full outer join tracker_stored
        on
            fresh.object_id = tracker_stored.object_id
            and fresh.fact_date = tracker_stored.stored_date
    where
        tracker_stored.stored_date is null
        or (fresh.fact_date is null and tracker_stored.stored_value <> 0)
        or fresh.day_value <> tracker_stored.stored_value
    {%- else %}
    {#- Without `day` there is nothing cheap to compare: lookback_days only. #}
    select cast(null as date) as changed_date
    {%- endif %}
),

tracker_recompute as (
    select
        coalesce(
            least(
                (select tracker_changes.changed_date from tracker_changes),
                (
                    select cast({{ dbt.dateadd('day', -lookback_days, 'max(tracker_stored.stored_date)') }} as date)
                    from tracker_stored
                ),
                cast({{ recompute_from if recompute_from is not none else 'null' }} as date)
            ),
            (select min(tracker_objects.first_date) from tracker_objects)
        ) as from_date
),

{%- else %}

tracker_recompute as (
    select min(first_date) as from_date
    from tracker_objects
),

{%- endif %}

{# Rolling windows ending on from_date reach back longest_window - 1 days. #}
tracker_spine as (
    {{ trackhouse.date_spine(
        "(select cast(" ~ dbt.dateadd('day', 1 - longest_window, 'tracker_recompute.from_date') ~ " as date) from tracker_recompute)",
        "(select tracker_as_of.as_of_date from tracker_as_of)"
    ) }}
),

tracker_grid as (
    select
        tracker_objects.object_id,
        tracker_spine.date_day
    from tracker_objects
    inner join tracker_spine
        on tracker_spine.date_day >= tracker_objects.first_date
),

{%- if counting and rolling %}

{# Runs of each key per rolling window, from facts inside the grid only. #}
tracker_sequenced as (
    select
        object_id,
        fact_date,
        {{ dbt.datediff(
            'lag(fact_date) over (partition by object_id, fact_key order by fact_date)',
            'fact_date',
            'day'
        ) }} as days_since_previous,
        {{ dbt.datediff(
            'fact_date',
            'lead(fact_date) over (partition by object_id, fact_key order by fact_date)',
            'day'
        ) }} as days_to_next
    from tracker_facts
    where fact_date >= (select min(tracker_spine.date_day) from tracker_spine)
),

tracker_runs as (
    select
        object_id,
        fact_date,
        {%- for period in rolling %}
        sum(
            case when days_since_previous is null or days_since_previous >= {{ known_periods[period] }} then 1 else 0 end
        ) as starts_{{ period }},
        sum(
            case when days_to_next is null or days_to_next >= {{ known_periods[period] }} then 1 else 0 end
        ) as ends_{{ period }}{{ ',' if not loop.last }}
        {%- endfor %}
    from tracker_sequenced
    group by object_id, fact_date
),

{%- endif %}

{%- if 'lifetime' in periods %}

{# What lifetime adds on each date: keys seen for the first time, or the daily sum. #}
tracker_lifetime_additions as (
    {%- if counting %}
    select
        object_id,
        first_seen_date as fact_date,
        count(*) as added_value
    from (
        select
            object_id,
            fact_key,
            min(fact_date) as first_seen_date
        from tracker_facts
        group by object_id, fact_key
    ) as first_seen
    group by object_id, first_seen_date
    {%- else %}
    select
        object_id,
        fact_date,
        day_value as added_value
    from tracker_daily
    {%- endif %}
),

{# Lifetime before the grid starts (zero in a full run). #}
tracker_lifetime_base as (
    select
        object_id,
        sum(added_value) as base_value
    from tracker_lifetime_additions
    where fact_date < (select min(tracker_spine.date_day) from tracker_spine)
    group by object_id
),

{%- endif %}

tracker_measured as (
    select
        tracker_grid.object_id,
        tracker_grid.date_day,
        coalesce(tracker_daily.day_value, 0) as day_value
        {%- if 'lifetime' in periods %},
        coalesce(tracker_lifetime_additions.added_value, 0) as added_value,
        coalesce(tracker_lifetime_base.base_value, 0) as base_value
        {%- endif %}
        {%- if counting %}
        {%- for period in rolling %},
        coalesce(tracker_runs.starts_{{ period }}, 0) as starts_{{ period }},
        coalesce(tracker_runs.ends_{{ period }}, 0) as ends_{{ period }}
        {%- endfor %}
        {%- endif %}
    from tracker_grid
    left join tracker_daily
        on
            tracker_grid.object_id = tracker_daily.object_id
            and tracker_grid.date_day = tracker_daily.fact_date
    {%- if 'lifetime' in periods %}
    left join tracker_lifetime_additions
        on
            tracker_grid.object_id = tracker_lifetime_additions.object_id
            and tracker_grid.date_day = tracker_lifetime_additions.fact_date
    left join tracker_lifetime_base
        on tracker_grid.object_id = tracker_lifetime_base.object_id
    {%- endif %}
    {%- if counting and rolling %}
    left join tracker_runs
        on
            tracker_grid.object_id = tracker_runs.object_id
            and tracker_grid.date_day = tracker_runs.fact_date
    {%- endif %}
),

{# Running sums per object over the dense grid: one row per date, so lag(n) = n days back. #}
tracker_cumulated as (
    select
        object_id,
        date_day,
        day_value
        {%- if 'lifetime' in periods %},
        base_value + sum(added_value) over grid_order as value_lifetime
        {%- endif %}
        {%- for period in rolling %},
        {%- if counting %}
        sum(starts_{{ period }}) over grid_order as cumulative_starts_{{ period }},
        sum(ends_{{ period }}) over grid_order as cumulative_ends_{{ period }}
        {%- else %}
        sum(day_value) over grid_order as cumulative_starts_{{ period }},
        sum(day_value) over grid_order as cumulative_ends_{{ period }}
        {%- endif %}
        {%- endfor %}
    from tracker_measured
    window grid_order as (
        partition by object_id
        order by date_day
        rows between unbounded preceding and current row
    )
),

tracker_values as (
    select
        object_id,
        date_day,
        day_value as value_day
        {%- if 'lifetime' in periods %},
        value_lifetime
        {%- endif %}
        {%- for period in rolling %},
        cumulative_starts_{{ period }} - coalesce(
            lag(cumulative_ends_{{ period }}, {{ known_periods[period] }})
                over (partition by object_id order by date_day),
            0
        ) as value_{{ period }}
        {%- endfor %}
    from tracker_cumulated
),

{%- if incremental %}

{# Stored dates this run no longer produces: after as_of (an earlier as_of), or
   from from_date on but outside the grid (a first date moved later, an object
   or the whole metric without data left). Each gets a null row per period;
   the statistics marts delete null rows after their insert. #}
tracker_vanished as (
    select distinct
        tracker_stored.object_id,
        tracker_stored.stored_date
    from tracker_stored
    where
        tracker_stored.stored_date > (select tracker_as_of.as_of_date from tracker_as_of)
        or (
            tracker_stored.stored_date >= (select tracker_recompute.from_date from tracker_recompute)
            and not exists (
                select 1
                from tracker_grid
                where
                    tracker_grid.object_id = tracker_stored.object_id
                    and tracker_grid.date_day = tracker_stored.stored_date
            )
        )
),

{%- endif %}

tracker_final as (
    {%- for period in periods %}
    select
        cast('{{ domain_ref }}' as {{ dbt.type_string() }}) as domain,
        cast('{{ metric_ref }}' as {{ dbt.type_string() }}) as metric,
        cast('{{ period }}' as {{ dbt.type_string() }}) as period,
        date_day as date,
        {%- if by_object %}
        cast('{{ object_type }}' as {{ dbt.type_string() }}) as object_type,
        object_id,
        {%- endif %}
        value_{{ period }} as value
    from tracker_values
    where date_day >= (select tracker_recompute.from_date from tracker_recompute)
    {%- if incremental %}
    union all
    select
        cast('{{ domain_ref }}' as {{ dbt.type_string() }}) as domain,
        cast('{{ metric_ref }}' as {{ dbt.type_string() }}) as metric,
        cast('{{ period }}' as {{ dbt.type_string() }}) as period,
        stored_date as date,
        {%- if by_object %}
        cast('{{ object_type }}' as {{ dbt.type_string() }}) as object_type,
        object_id,
        {%- endif %}
        cast(null as numeric(38, 6)) as value
    from tracker_vanished
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select * from tracker_final
{%- endmacro %}
