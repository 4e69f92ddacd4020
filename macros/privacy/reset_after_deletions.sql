{#
    A pre_hook for every incremental model: after a `trackhouse forget` (a new row
    with deleted rows in the raw table deletion_requests) the model forgets
    everything it kept, so this run rebuilds it from the raw tables, without the
    forgotten person, exactly as a full refresh would: each incremental model treats
    an empty table as a first build. Aggregates (active users, statistics) are
    recomputed from what is left. When nothing was deleted it deletes nothing.

    What each model has seen of the log (a count and the latest time) is kept in the
    table trackhouse_deletions_applied beside it, one row per model, written before
    the model reads the raw tables: a deletion that commits during the build is seen
    by the next one. Every build (first, full refresh, incremental) updates it.
    The deletion log is read here directly, not as a dbt source: every dbt source is
    the key of an ingestion asset in Dagster, and the log is written by `trackhouse
    forget`, not by ingestion.
    Usage: config(pre_hook="{{ trackhouse.reset_after_deletions() }}").

    `fingerprint` (optional, a SQL text expression): what else the stored rows depend
    on, e.g. settings (touchpoint_settings_fingerprint). It is kept with the deletions
    seen, and a new value empties the table the same way.
#}
{% macro reset_after_deletions(fingerprint=none) -%}
    {{ return(adapter.dispatch('reset_after_deletions', 'trackhouse')(fingerprint)) }}
{%- endmacro %}

{% macro default__reset_after_deletions(fingerprint=none) -%}
    {%- set marks = api.Relation.create(
        database=this.database,
        schema=this.schema,
        identifier='trackhouse_deletions_applied',
        type='table',
    ) -%}
    {#- where the raw tables are: as the trackhouse_raw source says (_sources.yml) -#}
    {%- set deletion_log = api.Relation.create(
        database=var('trackhouse_raw_database', none) or target.database,
        schema=var('trackhouse_raw_schema', none) or env_var('TRACKHOUSE_RAW_SCHEMA', 'trackhouse_raw'),
        identifier='deletion_requests',
        type='table',
    ) -%}
    {%- set deletions_seen -%}
        (
            select
                cast(count(*) as {{ dbt.type_string() }}) || '/'
                || coalesce(cast(max(requested_at) as {{ dbt.type_string() }}), '')
            from {{ deletion_log }}
            where rows_deleted > 0
        )
        {%- if fingerprint is not none %} || '/' || ({{ fingerprint }}){% endif %}
    {%- endset -%}
    create table if not exists {{ marks }} (
        model_name {{ dbt.type_string() }},
        deletions_seen {{ dbt.type_string() }}
    );
    {% if is_incremental() -%}
        delete from {{ this }}
        where {{ deletions_seen }} <> coalesce(
            (select deletions_seen from {{ marks }} where model_name = '{{ this.identifier }}'),
            '0/'
        );
    {%- endif %}
    delete from {{ marks }} where model_name = '{{ this.identifier }}';
    insert into {{ marks }} (model_name, deletions_seen)
    select '{{ this.identifier }}', {{ deletions_seen }}
{%- endmacro %}

{#
    on-run-start (dbt_project.yml): the table trackhouse_deletions_applied in every
    schema an incremental trackhouse model is built in, created before the models run.
    With threads > 1, two pre_hooks creating it at once on a new DuckDB file conflict
    ("Catalog write-write conflict"); created here first, their `create table if not
    exists` finds it.
#}
{% macro create_deletion_marks() -%}
    {{ return(adapter.dispatch('create_deletion_marks', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__create_deletion_marks() -%}
    {%- if execute -%}
        {%- set relations = [] -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.package_name == 'trackhouse'
            and node.config.materialized == 'incremental' -%}
            {%- set marks = api.Relation.create(
                database=node.database, schema=node.schema,
                identifier='trackhouse_deletions_applied', type='table') -%}
            {%- if marks | string not in relations -%}
                {%- do relations.append(marks | string) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for marks in relations -%}
            create table if not exists {{ marks }} (
                model_name {{ dbt.type_string() }},
                deletions_seen {{ dbt.type_string() }}
            ){{ ';' if not loop.last }}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
