"""Attribution: django-attribution's `Conversion.objects.with_attribution(...)`, in SQL.

`attribute_conversions` reads the `touchpoints` and `conversions` marts and
computes first- or last-touch attribution for whatever window it is given, per
call: no rebuild is needed to try a 7-day window or a per-source one. With the
settings a `dbt build` used (vars `window_days`, `source_windows`), it returns
the rows of the `conversion_attribution` mart for that model — the rules are
the same (see docs/attribution.md):

- eligible touchpoints: same stitched identity, ``touched_at < converted_at``
  (strictly) and ``touched_at >= converted_at - window``, where the window is
  ``source_windows[utm_source]`` days for that exact (case-sensitive) source,
  else ``source_windows["default"]`` when given, else ``window_days``; a window
  of 0 leaves nothing eligible;
- first touch = the earliest eligible touchpoint, last touch = the latest, in
  the order (touched_at, touchpoint_id);
- a conversion without eligible touchpoints is listed with touchpoint_id None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import TrackhouseError, ValueErrorWithKnownValues
from ..parsing import TRACKING_PARAMETERS
from ..settings import Settings, load_settings
from . import fetch, relation

ATTRIBUTION_MODELS = ("first_touch", "last_touch")
# The 12 tracking parameters are the mart columns of the same names.
TRACKING_COLUMNS = TRACKING_PARAMETERS
# The columns of the conversion_attribution mart, in its order.
COLUMNS = (
    "conversion_id",
    "attribution_model",
    "touchpoint_id",
    "touched_at",
    *TRACKING_COLUMNS,
    "referrer",
    "stitched_id",
    "event",
    "converted_at",
    "value",
    "currency",
    "is_valid",
    "window_days",
    "eligible_touchpoints",
)
# What `--format table` shows (JSON has every column).
TABLE_COLUMNS = (
    "conversion_id",
    "event",
    "converted_at",
    "value",
    "currency",
    "touchpoint_id",
    "touched_at",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)


class AttributionArgumentError(TrackhouseError, ValueError):
    """A window or a source window is not a whole number of days >= 0."""


def _days(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AttributionArgumentError(
            f"{name} is {value!r}, but attribution windows are whole numbers of days >= 0 "
            "(0 attributes nothing); pass e.g. 7, 14 or 30."
        )
    return value


def window_expression(
    window_days: int, source_windows: Mapping[str, int] | None
) -> tuple[str, dict[str, Any]]:
    """The window in days of a touchpoint as SQL over `utm_source`, with its binds.

    Mirrors the dbt macro `attribution_window_days`: an exact, case-sensitive
    source match, else `source_windows["default"]`, else `window_days`.
    """
    default = _days(window_days, "window_days")
    windows = dict(source_windows or {})
    for source in windows:
        if not isinstance(source, str):
            raise AttributionArgumentError(
                f"source_windows keys are utm_source values (strings), got {source!r}; "
                "write them like {'google': 14, 'email': 7}."
            )
    if "default" in windows:
        default = _days(windows.pop("default"), "source_windows['default']")
    if not windows:
        return str(default), {}
    params: dict[str, Any] = {}
    cases = []
    for i, (source, days) in enumerate(sorted(windows.items())):
        params[f"source_{i}"] = source
        cases.append(f"when :source_{i} then {_days(days, f'source_windows[{source!r}]')}")
    return f"case utm_source {' '.join(cases)} else {default} end", params


def attribution_sql(
    settings: Settings,
    model: str = "last_touch",
    window_days: int = 30,
    source_windows: Mapping[str, int] | None = None,
    valid_only: bool = True,
) -> tuple[str, dict[str, Any]]:
    """The query `attribute_conversions` runs, and its binds."""
    if model not in ATTRIBUTION_MODELS:
        raise ValueErrorWithKnownValues(
            "attribution model",
            model,
            ATTRIBUTION_MODELS,
            "Pick one of them (multi-touch credits are in the attribution_credits mart).",
        )
    window, params = window_expression(window_days, source_windows)
    order = "" if model == "first_touch" else " desc"
    valid = "where is_valid" if valid_only else ""
    tracking = ",\n            ".join(f"touchpoints.{c}" for c in TRACKING_COLUMNS)
    sql = f"""
        with
        conversions as (
            select * from {relation("conversions", settings)}
            {valid}
        ),
        touchpoints as (
            select * from {relation("touchpoints", settings)}
        ),
        windowed_touchpoints as (
            select touchpoint_id, stitched_id, touched_at, {window} as window_days
            from touchpoints
        ),
        matched as (
            select
                conversions.conversion_id,
                windowed_touchpoints.touchpoint_id,
                windowed_touchpoints.window_days,
                row_number() over (
                    partition by conversions.conversion_id
                    order by
                        windowed_touchpoints.touched_at{order},
                        windowed_touchpoints.touchpoint_id{order}
                ) as touch_rank,
                count(*) over (partition by conversions.conversion_id) as touchpoint_count
            from conversions
            inner join windowed_touchpoints
                on conversions.stitched_id = windowed_touchpoints.stitched_id
                and windowed_touchpoints.touched_at < conversions.converted_at
                and windowed_touchpoints.touched_at
                    >= conversions.converted_at
                    - windowed_touchpoints.window_days * interval '1 day'
        ),
        chosen as (
            select * from matched where touch_rank = 1
        )
        select
            conversions.conversion_id,
            '{model}' as attribution_model,
            touchpoints.touchpoint_id,
            touchpoints.touched_at,
            {tracking},
            touchpoints.referrer,
            conversions.stitched_id,
            conversions.event,
            conversions.converted_at,
            conversions.value,
            conversions.currency,
            conversions.is_valid,
            chosen.window_days,
            coalesce(chosen.touchpoint_count, 0) as eligible_touchpoints
        from conversions
        left join chosen
            on conversions.conversion_id = chosen.conversion_id
        left join touchpoints
            on chosen.touchpoint_id = touchpoints.touchpoint_id
        order by conversions.converted_at, conversions.conversion_id
    """
    return sql, params


def attribute_conversions(
    model: str = "last_touch",
    window_days: int = 30,
    source_windows: Mapping[str, int] | None = None,
    valid_only: bool = True,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """One row per conversion: the touchpoint credited under `model`, with its
    12 tracking parameters and referrer (None when unattributed), ordered by
    conversion time. The seed's ``Conversion.objects.valid().with_attribution(
    last_touch, window_days=30, source_windows={...})``; `valid_only=False`
    includes unconfirmed and deactivated conversions. Keys are the columns of
    the `conversion_attribution` mart.

    >>> attribute_conversions("first_touch", window_days=7, source_windows={"google": 14})
    """
    settings = settings or load_settings()
    sql, params = attribution_sql(settings, model, window_days, source_windows, valid_only)
    rows = fetch(sql, params, settings)
    for row in rows:
        # The same types on both targets (DuckDB returns the literal as str anyway).
        if row["window_days"] is not None:
            row["window_days"] = int(row["window_days"])
        row["eligible_touchpoints"] = int(row["eligible_touchpoints"])
    return rows


# -- command line (trackhouse.cli) ------------------------------------------------
def parse_source_window(text: str) -> tuple[str, int]:
    """'google=14' -> ('google', 14); the source is everything before the last '='."""
    source, sep, days = text.rpartition("=")
    if not sep or not source or not days.strip().isdigit():
        raise AttributionArgumentError(
            f"--source-window {text!r} must be SOURCE=DAYS with whole days >= 0, "
            "e.g. --source-window google=14 --source-window email=7"
        )
    return source, int(days)
