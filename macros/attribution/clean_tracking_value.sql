{#
    A tracking value cleaned the way django-attribution cleans it, in SQL:
    non-printable characters removed (controls, zero-width and bidi format
    characters, private use), every run of whitespace (Unicode, as Python's
    str.isspace) made one space, stripped; empty -> null. URL-decoding is a
    separate step (trackhouse.url_decode) because context.campaign values
    arrive decoded. Dispatched only because the two regex engines spell
    Unicode code points differently (RE2: \x{200B}, PostgreSQL: \u200B).
    Most values are already clean (printable ASCII words with single spaces):
    one cheap match lets them skip the two Unicode regex replacements, which
    halves the cost of cleaning on DuckDB.
#}
{% macro clean_tracking_value(expr) -%}
    {{ return(adapter.dispatch('clean_tracking_value', 'trackhouse')(expr)) }}
{%- endmacro %}

{% macro default__clean_tracking_value(expr) -%}
    {%- set non_printable = _code_point_class(_non_printable_ranges(), '\\u%04X', '\\U%08X') -%}
    {%- set whitespace = _code_point_class(_whitespace_ranges(), '\\u%04X', '\\U%08X') -%}
    case
        when {{ expr }} ~ '^[!-~]+( [!-~]+)*$' then {{ expr }}
        else nullif(trim(regexp_replace(
            regexp_replace({{ expr }}, '{{ non_printable }}', '', 'g'),
            '{{ whitespace }}+', ' ', 'g'
        )), '')
    end
{%- endmacro %}

{% macro duckdb__clean_tracking_value(expr) -%}
    {#- DuckDB strings can hold NUL (url_decode('%00') makes one): remove it too. -#}
    {%- set non_printable = _code_point_class([[0, 0]] + _non_printable_ranges(), '\\x{%X}', '\\x{%X}') -%}
    {%- set whitespace = _code_point_class(_whitespace_ranges(), '\\x{%X}', '\\x{%X}') -%}
    case
        when regexp_full_match({{ expr }}, '[!-~]+( [!-~]+)*') then {{ expr }}
        else nullif(trim(regexp_replace(
            regexp_replace({{ expr }}, '{{ non_printable }}', '', 'g'),
            '{{ whitespace }}+', ' ', 'g'
        )), '')
    end
{%- endmacro %}

{#- Whitespace as Python's str.isspace: kept as (collapsed) spaces. -#}
{% macro _whitespace_ranges() -%}
    {{ return([
        [9, 13], [28, 32], [133, 133], [160, 160], [5760, 5760], [8192, 8202],
        [8232, 8233], [8239, 8239], [8287, 8287], [12288, 12288],
    ]) }}
{%- endmacro %}

{#-
    Non-printable and not whitespace: C0/C1 controls, soft hyphen, format
    characters (zero-width space/joiners, bidi marks and isolates, word
    joiner, BOM, interlinear annotation, tags) and the private use area.
    Code point 0 only matters to DuckDB (PostgreSQL text cannot hold it).
-#}
{% macro _non_printable_ranges() -%}
    {{ return([
        [1, 8], [14, 27], [127, 132], [134, 159], [173, 173], [1536, 1541], [1564, 1564],
        [1757, 1757], [1807, 1807], [6158, 6158], [8203, 8207], [8234, 8238],
        [8288, 8292], [8294, 8303], [57344, 63743], [65279, 65279], [65529, 65531],
        [917504, 917631],
    ]) }}
{%- endmacro %}

{#- A regex bracket expression of code point ranges, each written with the given format. -#}
{% macro _code_point_class(ranges, bmp_format, astral_format) -%}
    {%- set parts = [] -%}
    {%- for low, high in ranges -%}
        {%- set low_text = (bmp_format if low < 65536 else astral_format) | format(low) -%}
        {%- set high_text = (bmp_format if high < 65536 else astral_format) | format(high) -%}
        {%- do parts.append(low_text if low == high else low_text ~ '-' ~ high_text) -%}
    {%- endfor -%}
    {{ return('[' ~ parts | join('') ~ ']') }}
{%- endmacro %}
