{#
    Apache Spark (dbt-spark, Parquet tables): the `spark__` implementations of the
    dispatched trackhouse macros, in one place. Spark SQL string literals process
    backslash escapes, so a regular expression's backslashes are doubled here.
#}

{# -- time ------------------------------------------------------------------ #}

{#- timestamps are TIMESTAMP_NTZ in UTC (profiles.yml sets spark.sql.timestampType);
    from_utc_timestamp / to_utc_timestamp apply an IANA zone per value (DST-correct) -#}
{% macro spark__to_report_time(utc_timestamp, tz) -%}
    cast(from_utc_timestamp(cast(({{ utc_timestamp }}) as timestamp_ltz), '{{ tz }}') as timestamp_ntz)
{%- endmacro %}

{% macro spark__from_report_time(local_timestamp, tz) -%}
    cast(to_utc_timestamp(cast(({{ local_timestamp }}) as timestamp_ltz), '{{ tz }}') as timestamp_ntz)
{%- endmacro %}

{% macro spark__utc_now() -%}
    cast(current_timestamp() as timestamp_ntz)
{%- endmacro %}

{#- inclusive bounds; empty when the start is after the end (as generate_series) -#}
{% macro spark__date_spine(start_date, end_date) -%}
    select spine.date_day
    from (
        select explode(sequence(
            cast({{ start_date }} as date),
            greatest(cast({{ start_date }} as date), cast({{ end_date }} as date)),
            interval 1 day
        )) as date_day
    ) as spine
    where spine.date_day <= cast({{ end_date }} as date)
{%- endmacro %}

{#- one row per integer lower..upper; none when upper < lower (as generate_series) -#}
{% macro spark__expand_series(lower, upper) -%}
    explode(filter(
        sequence(cast({{ lower }} as bigint), greatest(cast({{ lower }} as bigint), cast({{ upper }} as bigint))),
        series_value -> series_value <= cast({{ upper }} as bigint)
    ))
{%- endmacro %}

{# -- strings and URLs --------------------------------------------------------- #}

{% macro spark__json_text(json_expr, key) -%}
    get_json_object({{ json_expr }}, '$.{{ key }}')
{%- endmacro %}

{#- java.net.URLDecoder ('+' is a space); a malformed escape keeps the value as it was -#}
{% macro spark__url_decode(expr) -%}
    coalesce(try_url_decode({{ expr }}), {{ expr }})
{%- endmacro %}

{% macro spark__regex_group(expr, pattern) -%}
    nullif(regexp_extract({{ expr }}, '{{ pattern | replace("\\", "\\\\") }}', 1), '')
{%- endmacro %}

{% macro spark__query_parameter(query_expr, name) -%}
    nullif(substr(
        try_element_at(
            filter(split({{ query_expr }}, '&'), query_pair -> startswith(query_pair, '{{ name }}=')),
            -1
        ),
        {{ name | length + 2 }}
    ), '')
{%- endmacro %}

{#- Java regular expressions: \x{...} code points; NUL removed as on DuckDB -#}
{% macro spark__clean_tracking_value(expr) -%}
    {%- set non_printable = trackhouse._code_point_class([[0, 0]] + trackhouse._non_printable_ranges(), '\\\\x{%X}', '\\\\x{%X}') -%}
    {%- set whitespace = trackhouse._code_point_class(trackhouse._whitespace_ranges(), '\\\\x{%X}', '\\\\x{%X}') -%}
    case
        when {{ expr }} rlike '^[!-~]+( [!-~]+)*$' then {{ expr }}
        else nullif(trim(regexp_replace(
            regexp_replace({{ expr }}, '{{ non_printable }}', ''),
            '{{ whitespace }}+', ' '
        )), '')
    end
{%- endmacro %}

{#- dbt-spark's listagg has no ORDER BY: sort (measure, order key) pairs by the key.
    Spark compares strings by their UTF-8 bytes (the byte order used on every target). -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if order_by_clause -%}
        {%- set order_expr = order_by_clause | replace('order by', '') | replace('ORDER BY', '') | trim -%}
        array_join(transform(
            array_sort(collect_list(named_struct('sort_key', {{ order_expr }}, 'measure', {{ measure }}))),
            listagg_item -> listagg_item.measure
        ), {{ delimiter_text }})
    {%- else -%}
        array_join(collect_list({{ measure }}), {{ delimiter_text }})
    {%- endif -%}
{%- endmacro %}

{# -- incremental models on Parquet ------------------------------------------ #}

{#- Parquet tables have no DELETE: keep the rows of this time zone by rewriting the table -#}
{% macro spark__delete_rows_of_other_timezones() -%}
    {%- if execute and is_incremental() -%}
        {%- set kept = this.incorporate(path={'identifier': this.identifier ~ '__th_kept'}) -%}
        {% do run_query('drop table if exists ' ~ kept) %}
        {% do run_query('create table ' ~ kept ~ ' using parquet as select * from ' ~ this
            ~ " where report_timezone = '" ~ var('report_timezone', 'UTC') ~ "'") %}
        {% do run_query('insert overwrite table ' ~ this ~ ' select * from ' ~ kept) %}
        {% do run_query('drop table ' ~ kept) %}
    {%- endif -%}
{%- endmacro %}

{# -- types ------------------------------------------------------------------ #}

{#- The contracts name PostgreSQL/DuckDB types; Spark spells text `string`. dbt casts
    null to each contract type to compare it with the model's (the contract check). -#}
{% macro spark__cast(field, type) -%}
    {%- set spark_type = type | trim -%}
    {%- if spark_type | lower in ('text', 'varchar', 'character varying') -%}
        {%- set spark_type = 'string' -%}
    {%- endif -%}
    cast({{ field }} as {{ spark_type }})
{%- endmacro %}

{# -- query planning ----------------------------------------------------------- #}

{#- `name as materialized (...)`: PostgreSQL and DuckDB compute such a CTE once; Spark
    has no hint (it plans CTEs itself), so it gets none -#}
{% macro materialized_hint() -%}
    {{ return(adapter.dispatch('materialized_hint', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__materialized_hint() -%}
    materialized
{%- endmacro %}

{% macro spark__materialized_hint() -%}
{%- endmacro %}

{#- dbt-spark's dateadd goes through unix seconds and to_timestamp, which gives null
    for TIMESTAMP_NTZ sessions; Spark's timestampadd clamps months to their last day
    as DuckDB and PostgreSQL do -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, cast({{ interval }} as int), cast({{ from_date_or_timestamp }} as timestamp_ntz))
{%- endmacro %}

{#- Java regular expressions; the channel rules keep to what POSIX, RE2 and Java share -#}
{% macro spark__regex_matches(expr, pattern) -%}
    ({{ expr }} rlike {{ pattern }})
{%- endmacro %}

{#- Spark rounds a double through its decimal representation (HALF_UP), as DuckDB -#}
{% macro spark__round_double(expr, places) -%}
    round(cast({{ expr }} as double), {{ places }})
{%- endmacro %}

{#- Parquet tables have no DELETE, so `trackhouse forget` is not offered on Spark
    (docs/spark.md): there is nothing to reset after -#}
{% macro spark__reset_after_deletions(fingerprint=none) -%}
{%- endmacro %}

{% macro spark__create_deletion_marks() -%}
{%- endmacro %}

{# -- portable spellings ------------------------------------------------------- #}

{#- 8-byte floating point: `double precision` (PostgreSQL, DuckDB), `double` (Spark) -#}
{% macro double_type() -%}
    {{ return(adapter.dispatch('double_type', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__double_type() -%}
    double precision
{%- endmacro %}

{% macro spark__double_type() -%}
    double
{%- endmacro %}

{#- the text type the contracts declare: `varchar` (PostgreSQL, DuckDB; not
    dbt.type_string(), which is `text` on PostgreSQL and would fail the incremental
    models' on_schema_change check), `string` (Spark) -#}
{% macro varchar_type() -%}
    {{ return(adapter.dispatch('varchar_type', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__varchar_type() -%}
    varchar
{%- endmacro %}

{% macro spark__varchar_type() -%}
    string
{%- endmacro %}

{#- seconds since 1970-01-01 of a UTC timestamp without zone (fractions kept) -#}
{% macro epoch_seconds(expr) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'trackhouse')(expr)) }}
{%- endmacro %}

{% macro default__epoch_seconds(expr) -%}
    extract(epoch from {{ expr }})
{%- endmacro %}

{% macro spark__epoch_seconds(expr) -%}
    (unix_micros(cast({{ expr }} as timestamp_ltz)) / 1000000.0)
{%- endmacro %}
