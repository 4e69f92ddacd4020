"""PostgreSQL roles for a production warehouse: writer, transformer, reader.

`trackhouse init --roles` (or `create_roles()`) creates three login roles and
grants each the least it needs; running it again changes nothing:

- ``trackhouse_writer`` — the application and `trackhouse load`: may insert into
  the raw tables. To de-duplicate it may also read the key column of each raw
  table (``events.message_id``, ``<table>.event_id``, ``rejected.rejected_id``),
  which `insert ... on conflict (key) do nothing returning key` needs. Nothing else
  of the raw data, nothing of the marts.
- ``trackhouse_transformer`` — dbt: reads the raw tables, creates and replaces
  the relations in the mart schema (the target schema of the profile).
- ``trackhouse_reader`` — dashboards, `trackhouse query`: reads the marts only.
  dbt grants it `select` on every mart at every build (the `+grants` of the marts
  in dbt_project.yml) when ``TRACKHOUSE_PG_READER_ROLE=trackhouse_reader`` is set
  where dbt runs. Staging and intermediate views live in the same schema but are
  not granted: a view reads with its owner's rights, so granting one would
  expose the raw data behind it.

Roles are a PostgreSQL feature: on DuckDB `create_roles` raises `RolesNotSupportedError`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .engine import ensure_schema, get_engine
from .errors import TrackhouseError
from .schema import ALL_TABLES
from .settings import Settings, load_settings

WRITER = "trackhouse_writer"
TRANSFORMER = "trackhouse_transformer"
READER = "trackhouse_reader"
ROLES = (WRITER, TRANSFORMER, READER)
# The environment variable dbt_project.yml reads to grant the marts to the reader.
READER_ROLE_ENV = "TRACKHOUSE_PG_READER_ROLE"


class RolesNotSupportedError(TrackhouseError):
    """Roles were asked for on a target that has none (DuckDB)."""


def _key_column(table: sa.Table) -> str:
    # message_id, rejected_id, event_id, or batches' load_sequence (the writer
    # reads its max to number the next batch)
    return next(iter(table.primary_key.columns)).name


def _create_role(conn: sa.Connection, q: Any, role: str) -> bool:
    """Create `role` (login, no password) unless it exists; True when created."""
    exists = conn.execute(
        sa.text("select 1 from pg_roles where rolname = :role"), {"role": role}
    ).first()
    if exists:
        return False
    # A concurrent `create_roles` may win the race: duplicate_object is fine.
    conn.execute(
        sa.text(
            f"do $$ begin create role {q(role)} login; "
            "exception when duplicate_object then null; end $$"
        )
    )
    return True


def _foreign_relations(conn: sa.Connection, schema: str) -> list[str]:
    """Relations in the mart schema the transformer does not own (it cannot replace them)."""
    rows = conn.execute(
        sa.text(
            """select c.relname from pg_class as c
            join pg_namespace as n on n.oid = c.relnamespace
            where n.nspname = :schema and c.relkind in ('r', 'v', 'm', 'p')
              and pg_get_userbyid(c.relowner) <> :role
            order by c.relname"""
        ),
        {"schema": schema, "role": TRANSFORMER},
    )
    return [r[0] for r in rows]


def create_roles(settings: Settings | None = None) -> list[str]:
    """Create the writer, transformer and reader roles and their grants (idempotent).

    Returns one line per role and per notice, for the command line to print.
    Run it as a superuser or a role with CREATEROLE that owns the raw tables.
    """
    settings = settings or load_settings()
    if settings.is_duckdb:
        raise RolesNotSupportedError(
            f"roles are a PostgreSQL feature; target {settings.target!r} is DuckDB, a single "
            "file with no users or grants (protect it with file permissions). "
            "Use --target postgres (or TRACKHOUSE_TARGET=postgres) to create "
            f"{', '.join(ROLES)}."
        )
    ensure_schema(settings)  # the raw tables must exist to be granted
    engine = get_engine(settings)
    q = engine.dialect.identifier_preparer.quote
    mart = q(settings.mart_schema)
    lines: list[str] = []
    user = settings.output.get("user")
    try:
        with engine.begin() as conn:
            # A GRANT without the right to give it only warns: check the user up front.
            may = conn.execute(
                sa.text(
                    "select rolsuper or rolcreaterole from pg_roles where rolname = current_user"
                )
            ).scalar_one()
            if not may:
                raise TrackhouseError(
                    f"the PostgreSQL user {user!r} may not create roles (it is neither a "
                    "superuser nor CREATEROLE); run `trackhouse init --roles` as a superuser, "
                    "e.g. TRACKHOUSE_PG_USER=postgres."
                )
            dbname = q(conn.execute(sa.text("select current_database()")).scalar_one())
            for role in ROLES:
                created = _create_role(conn, q, role)
                lines.append(
                    f"role {role}: {'created (login; no password yet)' if created else 'exists'}"
                )
                # The loader and dbt stage batches in temporary tables; the reader only reads.
                rights = "connect" if role == READER else "connect, temporary"
                conn.execute(sa.text(f"grant {rights} on database {dbname} to {q(role)}"))
            lines += _grant_writer(conn, q, settings.raw_schema)
            lines += _grant_transformer(conn, q, settings.raw_schema, settings.mart_schema)
            conn.execute(sa.text(f"grant usage on schema {mart} to {q(READER)}"))
            lines.append(
                f"{READER}: may read the marts in schema {settings.mart_schema}; dbt grants "
                f"select on each mart at every build when {READER_ROLE_ENV}={READER} is set "
                "where dbt runs (existing marts: after the next build)"
            )
    except sa.exc.ProgrammingError as exc:
        raise TrackhouseError(
            f"the PostgreSQL user {user!r} may not create roles or grant on "
            f"{settings.raw_schema}/{settings.mart_schema}: {exc.orig}; run "
            "`trackhouse init --roles` as a superuser (or a role with CREATEROLE that owns "
            "the raw tables), e.g. TRACKHOUSE_PG_USER=postgres."
        ) from exc
    lines.append(
        "set passwords with ALTER ROLE <role> PASSWORD '...' (or GRANT <role> TO an existing "
        "login user); connect as a role with TRACKHOUSE_PG_USER=<role>"
    )
    return lines


def _grant_writer(conn: sa.Connection, q: Any, raw_schema: str) -> list[str]:
    raw = q(raw_schema)
    conn.execute(sa.text(f"grant usage on schema {raw} to {q(WRITER)}"))
    for table in ALL_TABLES:
        name = f"{raw}.{q(table.name)}"
        conn.execute(sa.text(f"grant insert on {name} to {q(WRITER)}"))
        conn.execute(sa.text(f"grant select ({q(_key_column(table))}) on {name} to {q(WRITER)}"))
    for name in ("suppressions", "privacy_key"):  # the loader's suppression check (privacy.py)
        conn.execute(sa.text(f"grant select on {raw}.{q(name)} to {q(WRITER)}"))
    return [f"{WRITER}: may insert into the raw tables of schema {raw_schema}"]


def _grant_transformer(conn: sa.Connection, q: Any, raw_schema: str, mart_schema: str) -> list[str]:
    role, raw = q(TRANSFORMER), q(raw_schema)
    conn.execute(sa.text(f"grant usage on schema {raw} to {role}"))
    conn.execute(sa.text(f"grant select on all tables in schema {raw} to {role}"))
    mart = q(mart_schema)
    has_schema = conn.execute(
        sa.text("select 1 from pg_namespace where nspname = :schema"), {"schema": mart_schema}
    ).first()
    if has_schema:
        conn.execute(sa.text(f"grant usage, create on schema {mart} to {role}"))
    else:
        conn.execute(sa.text(f"create schema {mart} authorization {role}"))
    lines = [f"{TRANSFORMER}: reads the raw tables, builds the marts in schema {mart_schema} (dbt)"]
    foreign = _foreign_relations(conn, mart_schema)
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        lines.append(
            f"note: {len(foreign)} relations in schema {mart_schema} belong to other roles "
            f"({shown}); {TRANSFORMER} cannot replace them: drop them, or ALTER TABLE/VIEW "
            f"... OWNER TO {TRANSFORMER}, before building as {TRANSFORMER}"
        )
    return lines
