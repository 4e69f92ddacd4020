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
