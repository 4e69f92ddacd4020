{#
    The transition matrices of the data-driven model raised to the power
    2^squarings, as CTE definitions ending with one named `result`.

    `base` is a relation of (removed_state, from_state, to_state, probability):
    one matrix per removal scenario, absent entries being 0. Every squaring is
    M[s, i, k] = sum over j of M[s, i, j] * M[s, j, k], rounded to 15 places
    (round_double), so that engines whose sums differ in the last bit still agree.

    DuckDB and PostgreSQL: one CTE per squaring (matrix_1 ... matrix_n), each
    reading the previous one twice; they compute such CTEs once.
    Spark inlines CTEs, so the same chain would plan 2^n copies of the first
    matrix (and a recursive CTE may not aggregate its recursive reference):
    there each scenario's matrix is one dense array of rows over the sorted
    states, squared n times inside one expression (aggregate() folds the
    squaring over 1..n; a sum over the middle index per cell). Same products,
    same rounding after each squaring; the zeros the dense form adds do not
    change a sum. Entries that end at 0 are left out, as the join leaves them.
#}
{% macro squared_transition_matrices(base, squarings, result) -%}
    {{ return(adapter.dispatch('squared_transition_matrices', 'trackhouse')(base, squarings, result)) }}
{%- endmacro %}

{% macro _matrix_squaring(previous) -%}
    select
        a.removed_state,
        a.from_state,
        b.to_state,
        {{ trackhouse.round_double('sum(a.probability * b.probability)', 15) }} as probability
    from {{ previous }} as a
    inner join {{ previous }} as b
        on
            a.removed_state = b.removed_state
            and a.to_state = b.from_state
    group by a.removed_state, a.from_state, b.to_state
{%- endmacro %}

{% macro default__squared_transition_matrices(base, squarings, result) -%}
    {%- for i in range(1, squarings + 1) %}
    matrix_{{ i }} as (
        {{ trackhouse._matrix_squaring(base if i == 1 else 'matrix_' ~ (i - 1)) }}
    ),
    {%- endfor %}

    {{ result }} as (
        select * from matrix_{{ squarings }}
    )
{%- endmacro %}

{% macro spark__squared_transition_matrices(base, squarings, result) -%}
    {#- every state of every scenario, sorted: the rows and columns of the dense matrices -#}
    {{ result }}_states as (
        select array_sort(array_distinct(flatten(collect_list(array(from_state, to_state))))) as states
        from {{ base }}
    ),

    {{ result }}_rows as (
        select
            removed_state,
            from_state,
            map_from_entries(collect_list(struct(to_state, probability))) as row_entries
        from {{ base }}
        group by removed_state, from_state
    ),

    {{ result }}_dense as (
        select
            scenario_rows.removed_state,
            {{ result }}_states.states,
            transform({{ result }}_states.states, dense_from -> transform(
                {{ result }}_states.states,
                dense_to -> coalesce(
                    try_element_at(try_element_at(scenario_rows.entries, dense_from), dense_to),
                    cast(0 as double)
                )
            )) as matrix
        from (
            select
                removed_state,
                map_from_entries(collect_list(struct(from_state, row_entries))) as entries
            from {{ result }}_rows
            group by removed_state
        ) as scenario_rows
        cross join {{ result }}_states
    ),

    {#- the squarings: an accumulator (the matrix) folded over 1..n; the finish lambda
        lists the cells of the result (the matrix is a lambda variable there: had it
        been a column, Spark would inline the whole fold into every cell's reference) -#}
    {{ result }}_cells as (
        select
            removed_state,
            inline(aggregate(
                sequence(1, {{ squarings }}),
                matrix,
                (power, squaring) -> transform(power, power_row -> transform(
                    sequence(0, size(power) - 1),
                    to_index -> {{ trackhouse.round_double(
                        'aggregate(sequence(0, size(power) - 1), cast(0 as double),
                            (total, via_index) -> total + power_row[via_index] * power[via_index][to_index])',
                        15) }}
                )),
                power -> flatten(transform(
                    sequence(0, size(power) - 1),
                    from_index -> transform(
                        sequence(0, size(power) - 1),
                        to_index -> named_struct(
                            'from_state', states[from_index],
                            'to_state', states[to_index],
                            'probability', power[from_index][to_index]
                        )
                    )
                ))
            ))
        from {{ result }}_dense
    ),

    {{ result }} as (
        select
            removed_state,
            from_state,
            to_state,
            probability
        from {{ result }}_cells
        where probability <> 0
    )
{%- endmacro %}
