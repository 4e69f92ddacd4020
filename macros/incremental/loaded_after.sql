{#
    The commit-order watermark of the incremental models: a condition that
    holds for rows written by a batch committed after the previous build saw
    `watermark` (a SQL expression, e.g. a scalar subquery of the largest
    load_sequence stored). Batches are numbered as they commit
    (python/trackhouse/writer.py), so unlike received_at (stamped before the
    write) nothing committed later can carry a smaller number: a build that
    runs between two batches of one load misses nothing. An empty previous
    build (watermark null) takes everything.
#}
{% macro loaded_after(sequence_column, watermark) -%}
    {{ sequence_column }} > coalesce({{ watermark }}, -1)
{%- endmacro %}
