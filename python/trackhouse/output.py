"""Rendering query results for people (a table) or programs (JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

FORMATS = ("table", "json")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # JSON numbers: integers stay integers, money keeps its 2 places' value.
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    return orjson.dumps(
        list(rows), default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC
    ).decode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r.get(c)) for r in rows) for c in columns]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    lines = [fmt(columns), fmt(["-" * w for w in widths])]
    lines += [fmt(row) for row in cells]
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def render(rows: Sequence[dict[str, Any]], fmt: str = "table") -> str:
    return to_json(rows) if fmt == "json" else to_table(rows)
