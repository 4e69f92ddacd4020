{#
    Generic test: no two rows share the same values in `columns` (a composite
    primary key). Nulls compare equal here, so the whole-site rows (account_id
    null) of a usage mart are checked too. Grouping the columns is much cheaper
    than `unique` on a concatenated expression for millions of rows.
#}
{% test unique_combination(model, columns) %}
    select
        {{ columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
