{#
    True when the URL path starts with one of the prefixes of the var
    `utm_excluded_urls` (default /admin/ and /api/): such page views give no
    touchpoint. Plain prefix comparison with substr, not LIKE, so '_' and '%'
    in a prefix mean themselves.
#}
{% macro is_excluded_path(path_column, prefixes=none) -%}
    {%- set prefixes = prefixes if prefixes is not none else var('utm_excluded_urls', []) -%}
    {%- set prefixes = [prefixes] if prefixes is string else (prefixes or []) -%}
    {%- set checks = [] -%}
    {%- for prefix in prefixes if prefix -%}
        {%- do checks.append(
            "substr(" ~ path_column ~ ", 1, " ~ (prefix | length) ~ ") = '"
            ~ (prefix | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {%- if checks -%}
        ({{ checks | join(' or ') }})
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}
