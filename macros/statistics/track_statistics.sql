{#
    The engine behind trackhouse.track_by_date and trackhouse.track_by_date_and_object
    (call those; this one is shared so the two cannot drift apart).

    Returns a `with ... select` of statistic rows (domain, metric, period, date,
    [object_type, object_id,] value) that can be a whole model or the body of a CTE.

    Which rows:
    - by date (by_object=false): every period on every date from the metric's
      first date to the as-of date (dense);
    - by object (by_object=true): sparse. `day` on the dates the object has data,
      a rolling period (week, days_28, month) on the dates whose window holds data
      of the object, `lifetime` on the dates the object has data (it only changes
      there) and on the dates of `keep_lifetime_on`. A missing row means 0 for
      day and the rolling periods and "unchanged since the previous row" for
      lifetime; the query API fills them in (docs/statistics.md).

    How it stays linear in the data instead of one distinct count per date and period:
    - facts are reduced once to distinct (object, key, date) pairs (counting) or to
      daily sums (summing);
    - a rolling distinct count over N days is the number of "runs" of a key that
      cover the date: a run starts at a pair whose previous pair of the same key is
      N or more days earlier, and ends at a pair whose next pair is N or more days
      later; it covers the dates up to N - 1 days after its end. value(d) = runs
      started up to d - runs whose end + N is up to d: two running sums over the
      date grid, the second of ends moved N days later;
    - a rolling sum over N days is cumsum(d) - (the same sums moved N days later)(d);
    - lifetime is a running sum of first-seen dates (counting) or of daily sums.
    The grid is every date by date; by object only the dates up to the longest
    window after each date with data ("islands"), so its size follows the data,
    not objects x days.

    Incremental (when `stored` is given, by default {{ this }} in an incremental
    run): only dates from `from_date` on are computed, where from_date is the
    earliest of
    - the last stored `day` date minus var('lookback_days'),
    - the earliest date whose freshly counted `day` value differs from the stored
      one (late events of any age, removed data; needs the `day` period),
    - `recompute_from`, a SQL date expression the caller may add.
    Rolling windows then read only facts from from_date - (longest window - 1) on.
    A stored key (period, date, object) it no longer produces (after as_of, or from
    from_date on) comes back with a null value: the caller deletes those rows
    (the statistics marts do, in trackhouse.delete_vanished_statistics). Those keys
    are looked for in `stored_keys` (default: `stored`), only from from_date on.
    What still reads all dates: the daily values and their comparison with the
    stored `day` rows (a late or removed event of any age), and lifetime's first
    dates; the windows, the grid and the stored keys read only from_date on.

    output='series' returns instead one row per object and period with the
    object's first date (domain, metric, period, object_type, object_id,
    first_date): the series statistics_object_series lists for the query API.
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
    stored_keys=none,
    by_object=false,
    keep_lifetime_on=none,
    output='rows'
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



    {%- if stored is none and is_incremental() and output == 'rows' -%}
        {%- set stored = this -%}
    {%- endif -%}
    {%- set incremental = stored is not none and stored is not false and output == 'rows' -%}
    {%- set stored_keys = stored_keys if stored_keys is not none else stored -%}
    {%- set counting = count_distinct is not none -%}
    {#- By object the rows are sparse (see the header). -#}
    {%- set sparse = by_object -%}
    {%- set keep = sparse and keep_lifetime_on is not none and 'lifetime' in periods -%}
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
    {%- set string_type = dbt.type_string() -%}
    {#- This tracker's rows in a stored mart (`stored`, `stored_keys`), and their object id. -#}
    {%- set tracker_rows = "domain = '" ~ domain_ref ~ "' and metric = '" ~ metric_ref ~ "'"
        ~ (" and object_type = '" ~ object_type ~ "'" if by_object else '') -%}
    {%- set stored_object_id = ('cast(object_id as ' ~ string_type ~ ')') if by_object
        else ("cast('' as " ~ string_type ~ ")") -%}

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
        cast({{ object_expression }} as {{ string_type }}) as object_id,
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

{# An object's series starts at its first date (SPEC: objects with data up to the date).
   The series alone need no distinct pairs or daily values: the earliest source row
   up to as_of gives the same date. #}
tracker_objects as (
    select
        object_id,
        min(fact_date) as first_date
    {%- if output == 'series' %}
    from tracker_source
    where fact_date <= (select tracker_as_of.as_of_date from tracker_as_of)
    {%- else %}
    from tracker_daily
    {%- endif %}
    group by object_id
)

{%- if output == 'series' %}

{%- for period in periods %}
select
    cast('{{ domain_ref }}' as {{ string_type }}) as domain,
    cast('{{ metric_ref }}' as {{ string_type }}) as metric,
    cast('{{ period }}' as {{ string_type }}) as period,
    cast('{{ object_type if by_object else '' }}' as {{ string_type }}) as object_type,
    object_id,
    first_date
from tracker_objects
{% if not loop.last %}union all{% endif %}
{%- endfor %}

{%- else -%},

{%- if incremental %}

{# The stored `day` rows (every stored row without `day`): what is compared, and the last date. #}
tracker_stored as (
    select
        {{ stored_object_id }} as object_id,
        date as stored_date,
        value as stored_value
    from {{ stored }} as stored_rows
    where
        {{ tracker_rows }}
        {%- if 'day' in periods %}
        and period = 'day'
        {%- endif %}
),

{#
    Where the fresh daily values disagree with the stored `day` rows, something
    changed: a late event, a removed or re-dated fact. A stored value that is null
    (e.g. overridden by a recorded statistic) is not compared. By date a stored 0
    without fresh data is a date without data; by object (sparse) a stored `day`
    row means there was data.
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
        or (fresh.fact_date is null and tracker_stored.stored_value {{ 'is not null' if sparse else '<> 0' }})
        or fresh.day_value <> tracker_stored.stored_value
    {%- else %}
    {#- Without `day` there is nothing cheap to compare: lookback_days only. #}
    select cast(null as date) as changed_date
    {%- endif %}
),

tracker_from as (
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

tracker_from as (
    select min(first_date) as from_date
    from tracker_objects
),

{%- endif %}

{# The first date recomputed, and the first date of the grid: rolling windows ending
   on from_date reach back longest_window - 1 days (the grid has no dates when that
   is after as_of). #}
tracker_recompute as (
    select
        from_date,
        cast({{ dbt.dateadd('day', 1 - longest_window, 'from_date') }} as date) as grid_start
    from tracker_from
),

tracker_spine as (
    {{ trackhouse.date_spine(
        "(select tracker_recompute.grid_start from tracker_recompute)",
        "(select tracker_as_of.as_of_date from tracker_as_of)"
    ) }}
),

{%- if sparse %}

{# Dates with data in the grid; a gap longer than the longest window starts a new island. #}
tracker_data_dates as (
    select
        object_id,
        fact_date,
        case
            when {{ dbt.datediff(
                'lag(fact_date) over (partition by object_id order by fact_date)',
                'fact_date',
                'day'
            ) }} <= {{ longest_window }} then 0
            else 1
        end as starts_island
    from tracker_daily
    where fact_date >= (select tracker_recompute.grid_start from tracker_recompute)
),

tracker_islands_numbered as (
    select
        object_id,
        fact_date,
        sum(starts_island) over (
            partition by object_id
            order by fact_date
            rows between unbounded preceding and current row
        ) as island
    from tracker_data_dates
),

{# Each island runs from its first date with data to longest_window days after its
   last one: every window that holds its data, and the day each window lets go of it. #}
tracker_islands as (
    select
        object_id,
        min(fact_date) as island_start,
        cast({{ dbt.dateadd('day', longest_window, 'max(fact_date)') }} as date) as island_end
    from tracker_islands_numbered
    group by object_id, island
),

{%- if keep %}

{# Extra dates that keep a lifetime row (within the object's series and the grid). #}
tracker_kept as (
    select distinct
        kept.object_id,
        kept.kept_date
    from ({{ keep_lifetime_on }}) as kept
    inner join tracker_objects
        on
            kept.object_id = tracker_objects.object_id
            and kept.kept_date >= tracker_objects.first_date
    where
        kept.kept_date >= (select tracker_recompute.grid_start from tracker_recompute)
        and kept.kept_date <= (select tracker_as_of.as_of_date from tracker_as_of)
),

{%- endif %}

tracker_grid as (
    select
        tracker_islands.object_id,
        tracker_spine.date_day
    from tracker_islands
    inner join tracker_spine
        on
            tracker_spine.date_day >= tracker_islands.island_start
            and tracker_spine.date_day <= tracker_islands.island_end
    {%- if keep %}
    union all
    select
        tracker_kept.object_id,
        tracker_kept.kept_date as date_day
    from tracker_kept
    left join tracker_islands
        on
            tracker_kept.object_id = tracker_islands.object_id
            and tracker_kept.kept_date >= tracker_islands.island_start
            and tracker_kept.kept_date <= tracker_islands.island_end
    where tracker_islands.object_id is null
    {%- endif %}
),

{%- else %}

tracker_grid as (
    select
        tracker_objects.object_id,
        tracker_spine.date_day
    from tracker_objects
    inner join tracker_spine
        on tracker_spine.date_day >= tracker_objects.first_date
),

{%- endif %}

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
    where fact_date >= (select tracker_recompute.grid_start from tracker_recompute)
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

{%- if rolling %}

{# What leaves each rolling window: run ends (counting) or daily sums (summing),
   moved to the date they drop out of it, N days later. One pass over the source,
   one row per (row, period) from a cross join with the periods: an engine that
   inlines CTEs (Spark) then plans the source once, not once per period. #}
tracker_leaving as (
    select
        moved.object_id,
        moved.leaving_date,
        {%- for period in rolling %}
        sum(case when moved.period = '{{ period }}' then moved.leaving_value else 0 end)
            as leaving_{{ period }}{{ ',' if not loop.last }}
        {%- endfor %}
    from (
        select
            source_rows.object_id,
            rolling_periods.period,
            case rolling_periods.period
                {%- for period in rolling %}
                when '{{ period }}' then cast({{ dbt.dateadd('day', known_periods[period], 'source_rows.fact_date') }} as date)
                {%- endfor %}
            end as leaving_date,
            case rolling_periods.period
                {%- for period in rolling %}
                when '{{ period }}' then {{ 'source_rows.ends_' ~ period if counting else 'source_rows.day_value' }}
                {%- endfor %}
            end as leaving_value
        from {{ 'tracker_runs' if counting else 'tracker_daily' }} as source_rows
        cross join ({{ trackhouse.statistic_period_rows(rolling) }}) as rolling_periods
        where source_rows.fact_date >= (select tracker_recompute.grid_start from tracker_recompute)
    ) as moved
    group by moved.object_id, moved.leaving_date
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
    where fact_date < (select tracker_recompute.grid_start from tracker_recompute)
    group by object_id
),

{%- endif %}

tracker_measured as (
    select
        tracker_grid.object_id,
        tracker_grid.date_day,
        coalesce(tracker_daily.day_value, 0) as day_value,
        case when tracker_daily.fact_date is not null then tracker_grid.date_day end as data_date
        {%- if keep %},
        case when tracker_kept.object_id is not null then 1 else 0 end as is_kept
        {%- endif %}
        {%- if 'lifetime' in periods %},
        coalesce(tracker_lifetime_additions.added_value, 0) as added_value,
        coalesce(tracker_lifetime_base.base_value, 0) as base_value
        {%- endif %}
        {%- for period in rolling %},
        {%- if counting %}
        coalesce(tracker_runs.starts_{{ period }}, 0) as entering_{{ period }},
        {%- else %}
        coalesce(tracker_daily.day_value, 0) as entering_{{ period }},
        {%- endif %}
        coalesce(tracker_leaving.leaving_{{ period }}, 0) as leaving_{{ period }}
        {%- endfor %}
    from tracker_grid
    left join tracker_daily
        on
            tracker_grid.object_id = tracker_daily.object_id
            and tracker_grid.date_day = tracker_daily.fact_date
    {%- if keep %}
    left join tracker_kept
        on
            tracker_grid.object_id = tracker_kept.object_id
            and tracker_grid.date_day = tracker_kept.kept_date
    {%- endif %}
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
    {%- if rolling %}
    left join tracker_leaving
        on
            tracker_grid.object_id = tracker_leaving.object_id
            and tracker_grid.date_day = tracker_leaving.leaving_date
    {%- endif %}
),

{# Running sums per object over the grid (every date a value changes on is in it). #}
tracker_values as (
    select
        object_id,
        date_day,
        data_date,
        max(data_date) over grid_order as last_data_date,
        day_value as value_day
        {%- if keep %},
        is_kept
        {%- endif %}
        {%- if 'lifetime' in periods %},
        base_value + sum(added_value) over grid_order as value_lifetime
        {%- endif %}
        {%- for period in rolling %},
        sum(entering_{{ period }}) over grid_order
        - sum(leaving_{{ period }}) over grid_order as value_{{ period }}
        {%- endfor %}
    from tracker_measured
    window grid_order as (
        partition by object_id
        order by date_day
        rows between unbounded preceding and current row
    )
),

{# One row per (grid row, period) from a cross join with the periods (one pass over
   tracker_values, which an engine that inlines CTEs would otherwise plan per period). #}
tracker_fresh as (
    select
        tracker_periods.period,
        tracker_values.date_day,
        tracker_values.object_id,
        case tracker_periods.period
            {%- for period in periods %}
            when '{{ period }}' then tracker_values.value_{{ period }}
            {%- endfor %}
        end as value
    from tracker_values
    cross join ({{ trackhouse.statistic_period_rows(periods) }}) as tracker_periods
    where
        tracker_values.date_day >= (select tracker_recompute.from_date from tracker_recompute)
        {%- if sparse %}
        and (
            {%- for period in periods %}
            {{ 'or ' if not loop.first }}(
                tracker_periods.period = '{{ period }}'
                {%- if period == 'day' %}
                and tracker_values.data_date is not null
                {%- elif period == 'lifetime' %}
                and (tracker_values.data_date is not null{{ ' or tracker_values.is_kept = 1' if keep }})
                {%- else %}
                and {{ dbt.datediff('tracker_values.last_data_date', 'tracker_values.date_day', 'day') }} < {{ known_periods[period] }}
                {%- endif %}
            )
            {%- endfor %}
        )
        {%- endif %}
),

{%- if incremental %}

{# Stored keys this run no longer produces: dates after as_of (an earlier as_of),
   or from from_date on without a fresh row (a first date moved later, an object
   or the whole metric without data left, a window without data any more). Each
   gets a null row; the statistics marts delete null rows after their insert. #}
tracker_vanished as (
    select distinct
        stored_rows.period,
        stored_rows.date_day,
        stored_rows.object_id
    from (
        {#- Only the stored rows this run may replace, filtered before the join: the
            dates from from_date on and after as_of (one bound, the earlier of the two). #}
        select
            period,
            date as date_day,
            {{ stored_object_id }} as object_id
        from {{ stored_keys }}
        where
            {{ tracker_rows }}
            and period in ('{{ periods | join("', '") }}')
            and date >= (
                select
                    least(
                        tracker_recompute.from_date,
                        cast({{ dbt.dateadd('day', 1, 'tracker_as_of.as_of_date') }} as date)
                    )
                from tracker_recompute
                cross join tracker_as_of
            )
    ) as stored_rows
    left join tracker_fresh
        on
            stored_rows.period = tracker_fresh.period
            and stored_rows.date_day = tracker_fresh.date_day
            and stored_rows.object_id = tracker_fresh.object_id
    where tracker_fresh.period is null
),

{%- endif %}

tracker_final as (
    select
        cast('{{ domain_ref }}' as {{ string_type }}) as domain,
        cast('{{ metric_ref }}' as {{ string_type }}) as metric,
        period,
        date_day as date,
        {%- if by_object %}
        cast('{{ object_type }}' as {{ string_type }}) as object_type,
        object_id,
        {%- endif %}
        value
    from tracker_fresh
    {%- if incremental %}
    union all
    select
        cast('{{ domain_ref }}' as {{ string_type }}) as domain,
        cast('{{ metric_ref }}' as {{ string_type }}) as metric,
        period,
        date_day as date,
        {%- if by_object %}
        cast('{{ object_type }}' as {{ string_type }}) as object_type,
        object_id,
        {%- endif %}
        cast(null as numeric(38, 6)) as value
    from tracker_vanished
    {%- endif %}
)

select * from tracker_final

{%- endif %}
{%- endmacro %}
