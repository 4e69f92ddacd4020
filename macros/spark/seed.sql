{#
    Seeds on Spark with values written as SQL literals. dbt-spark's own
    spark__load_csv_rows passes the values as bindings, and its `session` method
    formats each one as '{value}': an empty CSV field (None) became the string
    'None' (the channel rules' empty conditions then matched nothing, and every
    touchpoint was Unassigned), and a quote or backslash in a value broke or changed
    the statement. Here an empty field is null and a value is a Spark string
    literal (backslash and quote escaped), cast to the column's type as dbt-spark
    does; no bindings, so the same SQL runs on every connection method.

    This overrides dbt-spark's macro of the same name (the root project's win).
#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set types = [] -%}
    {%- for col_name in agate_table.column_names -%}
        {%- do types.append(column_override.get(col_name, adapter.convert_type(agate_table, loop.index0))) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for value in row -%}
                    cast({{ trackhouse.spark_literal(value) }} as {{ types[loop.index0] }})
                    {%- if not loop.last %}, {% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},{% endif %}
            {% endfor -%}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}

{#- a Python value as a Spark SQL literal: null, or a string literal (Spark processes
    backslash escapes in string literals, so backslashes are doubled) -#}
{% macro spark_literal(value) -%}
    {%- if value is none -%}
        null
    {%- else -%}
        '{{ (value | string) | replace("\\", "\\\\") | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
