{#
    The attribution window in days of a touchpoint, as an SQL expression over
    its utm_source column: source_windows[utm_source] when that exact
    (case-sensitive) source has an entry, else the default window, which is
    source_windows['default'] when given, else window_days. Both default to
    the vars `source_windows` and `window_days`. Values are checked here, at
    compile time, so a typo in --vars fails with a message, not a wrong mart.
#}
{% macro attribution_window_days(source_column, window_days=none, source_windows=none) -%}
{%- set windows = _attribution_windows(window_days, source_windows) -%}
{%- if windows.by_source -%}
case {{ source_column }}
{% for source, days in windows.by_source -%}
    when '{{ source | replace("'", "''") }}' then {{ days }}
{% endfor -%}
    else {{ windows.default }}
end
{%- else -%}
{{ windows.default }}
{%- endif -%}
{%- endmacro %}

{#- The widest window in days of any touchpoint (the default or any source's), at
    compile time: no eligible touchpoint is older than this before its conversion. -#}
{% macro attribution_widest_window_days(window_days=none, source_windows=none) -%}
{%- set windows = _attribution_windows(window_days, source_windows) -%}
{{ return(([windows.default] + windows.by_source | map(attribute=1) | list) | max) }}
{%- endmacro %}

{#- The checked settings: {'default': days, 'by_source': [(source, days), ...]}. -#}
{% macro _attribution_windows(window_days, source_windows) -%}
{%- set windows = source_windows if source_windows is not none else var('source_windows', {}) -%}
{%- set windows = windows or {} -%}
{%- if windows is not mapping -%}
{{ exceptions.raise_compiler_error(
    "var source_windows must map utm_source values to days, e.g. {google: 14, email: 7}; got "
    ~ windows ~ ". Fix it in dbt_project.yml or --vars.") }}
{%- endif -%}
{%- set default_days = _window_days_value(
    'window_days', window_days if window_days is not none else var('window_days', 30)) -%}
{%- if 'default' in windows -%}
{%- set default_days = _window_days_value("source_windows['default']", windows['default']) -%}
{%- endif -%}
{%- set by_source = [] -%}
{%- for source, days in windows.items() if source != 'default' -%}
{%- do by_source.append((source | string, _window_days_value(
    "source_windows[" ~ (source | string) ~ "]", days))) -%}
{%- endfor -%}
{{ return({'default': default_days, 'by_source': by_source}) }}
{%- endmacro %}

{#- A window in days: a whole number >= 0, else a compile error naming the setting. -#}
{% macro _window_days_value(name, value) -%}
{%- set text = value | string | trim -%}
{%- if value is sameas true or value is sameas false or not text.isdigit() -%}
{{ exceptions.raise_compiler_error(
    name ~ " is " ~ value ~ ", but attribution windows are whole numbers of days >= 0 "
    ~ "(0 attributes nothing). Fix it in dbt_project.yml or --vars.") }}
{%- endif -%}
{{ return(text | int) }}
{%- endmacro %}
