{#
    Percent-decoding of a query-string value: '+' is a space, %XX are the
    bytes of UTF-8 text. A value whose bytes are not valid UTF-8 (e.g. '%FF'
    or a cut-off '%C3') stays as received rather than failing the build; a
    lone '%' or '%zz' stays literally, as in Python's urllib.

    DuckDB has url_decode (which raises on invalid UTF-8, hence try()).
    PostgreSQL has nothing built in, and plpgsql functions would be objects
    outside dbt's control: instead the value is cut into %XX tokens and runs of
    other text, each token becomes bytes, the bytes are concatenated in order
    and read back as UTF-8 — after a regex check that they are well-formed
    UTF-8, because convert_from raises otherwise. %00 becomes nothing: text
    cannot hold a NUL byte in PostgreSQL, and non-printable characters are
    removed from tracking values afterwards anyway. Values without a '%', or
    whose only escape is %20, skip the work (every '%20' in a value is an
    escape: '%' cannot be a hex digit of an earlier one).
#}
{% macro url_decode(expr) -%}
    {{ return(adapter.dispatch('url_decode', 'trackhouse')(expr)) }}
{%- endmacro %}

{% macro default__url_decode(expr) -%}
    case
        when strpos({{ expr }}, '%') = 0 then replace({{ expr }}, '+', ' ')
        {# the most common escape alone (summer%20sale) needs no subquery #}
        when strpos(replace({{ expr }}, '%20', ''), '%') = 0
            then replace(replace({{ expr }}, '+', ' '), '%20', ' ')
        else coalesce((
            select
                case
                    when encode(decoded.value_bytes, 'hex') ~ '{{ _utf8_hex_pattern() }}'
                        then convert_from(decoded.value_bytes, 'UTF8')
                end
            from (
                select
                    string_agg(
                        case
                            when token.part[1] = '%00' then ''::bytea
                            when token.part[1] ~ '^%[0-9A-Fa-f]{2}$'
                                then decode(substr(token.part[1], 2), 'hex')
                            else convert_to(token.part[1], 'UTF8')
                        end,
                        ''::bytea
                        order by token.position
                    ) as value_bytes
                from regexp_matches(
                    replace({{ expr }}, '+', ' '), '%[0-9A-Fa-f]{2}|[^%]+|%', 'g'
                ) with ordinality as token (part, position)
            ) as decoded
        ), {{ expr }})
    end
{%- endmacro %}

{% macro duckdb__url_decode(expr) -%}
    coalesce(try(url_decode(replace({{ expr }}, '+', ' '))), {{ expr }})
{%- endmacro %}

{#- Well-formed UTF-8 (RFC 3629) as a regex over the lower-case hex of the bytes. -#}
{% macro _utf8_hex_pattern() -%}
    ^(?:[0-7][0-9a-f]|c[2-9a-f][89ab][0-9a-f]|d[0-9a-f][89ab][0-9a-f]|e0[ab][0-9a-f][89ab][0-9a-f]|e[1-9a-cef][89ab][0-9a-f][89ab][0-9a-f]|ed[89][0-9a-f][89ab][0-9a-f]|f0[9ab][0-9a-f][89ab][0-9a-f][89ab][0-9a-f]|f[1-3][89ab][0-9a-f][89ab][0-9a-f][89ab][0-9a-f]|f48[0-9a-f][89ab][0-9a-f][89ab][0-9a-f])*$
{%- endmacro %}
