"""Rendering rows for people (a rich table) or programs (JSON, CSV).

Times: trackhouse stores instants as naive UTC. JSON and CSV write them in full
(ISO 8601 with `+00:00`, microseconds kept); a table shows them to the second and
marks the column `(UTC)`. Dates are local dates in the report time zone: a table
labels such a column with that zone, e.g. `usage_date (Europe/Amsterdam)`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from rich.table import Table

FORMATS = ("table", "json", "csv")
# A table shows this many rows unless --limit says otherwise; JSON and CSV show all.
TABLE_LIMIT = 50


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # JSON numbers: integers stay integers, money keeps its 2 places' value.
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    return orjson.dumps(
        list(rows), default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC
    ).decode()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _json_default(value)  # the number JSON gives: 1.000000 -> 1, 49.90 -> 49.9
    return value


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV with a header row; every value in full (times ISO 8601 with their offset)."""
    if not rows and not columns:
        return ""
    columns = list(columns or rows[0].keys())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _plain_number(value: Decimal) -> str:
    """147.000000 -> 147, 15.500000 -> 15.50, 0.333333 -> 0.333333 (for people)."""
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value, "f").rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _table_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _utc(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _plain_number(value)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def column_label(name: str, values: Sequence[Any], time_zone: str | None) -> str:
    """The header of a table column: times are marked UTC, local dates with their zone."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, datetime) for v in present):
        return f"{name} (UTC)"
    if present and all(isinstance(v, date) for v in present):
        return f"{name} ({time_zone or 'local'})"
    return name


def rich_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    time_zone: str | None = None,
) -> Table:
    """A rich Table of the rows: numbers right-aligned, times to the second."""
    from rich import box
    from rich.table import Table

    columns = list(columns or (rows[0].keys() if rows else ()))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for c in columns:
        values = [r.get(c) for r in rows]
        numeric = bool(values) and all(_is_number(v) for v in values if v is not None)
        table.add_column(
            column_label(c, values, time_zone),
            justify="right" if numeric else "left",
            overflow="fold",
        )
    for r in rows:
        table.add_row(*(_table_cell(r.get(c)) for c in columns))
    return table


def to_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    time_zone: str | None = None,
    width: int | None = None,
) -> str:
    """The rows as a plain-text table (no colours); `width` None = as wide as needed."""
    if not rows:
        return "(no rows)"
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 100_000, color_system=None, force_terminal=False)
    console.print(rich_table(rows, columns, time_zone=time_zone))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def render(
    rows: Sequence[dict[str, Any]],
    fmt: str = "table",
    *,
    columns: Sequence[str] | None = None,
    time_zone: str | None = None,
) -> str:
    """Rows in one of FORMATS; `columns` chooses the table's columns (JSON/CSV: all)."""
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        return to_csv(rows).rstrip("\n")
    return to_table(rows, columns, time_zone=time_zone)
