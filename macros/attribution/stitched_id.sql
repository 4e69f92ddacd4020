{#
    The identity a row with user_id and anonymous_id columns belongs to (alias `row`):
    its user id when it has one, else the user its anonymous id is linked to, else the
    anonymous id; a user id may itself be aliased to another user, which is followed
    too. Needs stitching_joins(row) in the FROM clause.
#}
{% macro stitched_id(row) -%}
    case
        when {{ row }}.user_id is not null
            then coalesce(by_user.user_id, {{ row }}.user_id)
        else coalesce(by_anonymous.user_id, {{ row }}.anonymous_id)
    end
{%- endmacro %}

{# The two joins stitched_id(row) reads: `links` (int_identity_links_resolved, or a
   CTE of it) on the row's user id and on its anonymous id. #}
{% macro stitching_joins(row, links='resolved_links') -%}
    left join {{ links }} as by_user
        on {{ row }}.user_id = by_user.anonymous_id
    left join {{ links }} as by_anonymous
        on {{ row }}.anonymous_id = by_anonymous.anonymous_id
{%- endmacro %}
