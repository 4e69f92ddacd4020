"""Reading the marts: shared plumbing for the query API and the CLI.

Each capability has a module here (activity, attribution, statistics) with the
public query functions; `trackhouse.cli` turns them into `trackhouse query ...`
commands. All read the same profile and target as dbt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..engine import read_connection
from ..errors import TrackhouseError
from ..settings import Settings, load_settings


def relation(name: str, settings: Settings) -> str:
    """The quoted name of a mart in the target schema."""
    return f'"{settings.mart_schema}"."{name}"'


def text_type(settings: Settings) -> str:
    """The text type to cast to (the dbt macro `varchar_type`): Spark spells it `string`
    (its `varchar` needs a length)."""
    return "string" if settings.is_spark else "varchar"


def double_type(settings: Settings) -> str:
    """8-byte floating point (the dbt macro `double_type`)."""
    return "double" if settings.is_spark else "double precision"


def epoch_seconds(expr: str, settings: Settings) -> str:
    """Seconds since 1970 of a UTC timestamp without zone (the dbt macro `epoch_seconds`)."""
    if settings.is_spark:
        return f"(unix_micros(cast({expr} as timestamp_ltz)) / 1000000.0)"
    return f"extract(epoch from {expr})"


def fetch(
    sql: str, params: Mapping[str, Any] | None = None, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """Run a read query on the target; rows as dicts keyed by column name."""
    settings = settings or load_settings()
    if settings.is_spark:
        from .. import spark

        return spark.fetch(settings, sql, params)
    try:
        with read_connection(settings) as conn:
            result = conn.execute(sa.text(sql), dict(params or {}))
            return [dict(row._mapping) for row in result]
    except sa.exc.ProgrammingError as exc:
        if "does not exist" in str(exc) or "Catalog Error" in str(exc):
            raise TrackhouseError(
                f"a table this query needs is missing in {settings.target} "
                f"({settings.mart_schema}); run `dbt build` (or `make build`) first.\n{exc.orig}"
            ) from exc
        raise
