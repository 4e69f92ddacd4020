"""Statistics: django-trackstats' StatisticByDate(AndObject) rows, read from the marts.

`statistics("activity.active_users", "month")` returns the rows of
`statistics_by_date` for that metric and period, `object=True` the rows of
`statistics_by_date_and_object` (every object type), `object="account"` only
those of one object type. The values are the marts' values (the dbt vars of the
last `dbt build` decide the report time zone and the as-of date).

`statistics_by_date_and_object` is sparse: a row only where the object has data
in the period's window (lifetime only on the dates it can change). By object,
the API answers every date of each series (`statistics_object_series`: from the
object's first date to the as-of date) as a dense table would: a date without a
row is 0 for day and the rolling periods, and the previous row's value for
lifetime. Recorded statistics outside a series are returned as recorded.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..errors import TrackhouseError, ValueErrorWithKnownValues
from ..settings import Settings, load_settings
from . import fetch, relation

PERIODS = ("day", "week", "days_28", "month", "lifetime")
BY_DATE = "statistics_by_date"
BY_DATE_AND_OBJECT = "statistics_by_date_and_object"
OBJECT_SERIES = "statistics_object_series"
METRIC_REGISTRY = "trackhouse_metrics"

BY_DATE_COLUMNS = ("domain", "metric", "period", "date", "value")
BY_OBJECT_COLUMNS = ("domain", "metric", "period", "date", "object_type", "object_id", "value")

# A date without a row in a series: the mart's numeric(38, 6) zero.
ZERO = Decimal("0.000000")

DateBound = date | str | None
ObjectFilter = bool | str | None


class StatisticsQueryError(TrackhouseError, ValueError):
    """A statistics query argument (metric, date) cannot be understood."""


def _split_metric(metric: str) -> tuple[str, str]:
    parts = metric.split(".") if isinstance(metric, str) else []
    if len(parts) != 2 or not all(parts):
        raise StatisticsQueryError(
            f"metric {metric!r} must be written as 'domain.metric', e.g. 'activity.active_users'"
        )
    return parts[0], parts[1]


def _check_period(period: str) -> str:
    if period not in PERIODS:
        raise ValueErrorWithKnownValues(
            "period", period, PERIODS, "Periods are trackstats' day, week, month and lifetime."
        )
    return period


def _to_date(value: DateBound, name: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        raise StatisticsQueryError(
            f"{name} {value!r} is a datetime; statistics are per date: pass a date or 'YYYY-MM-DD'"
        )
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise StatisticsQueryError(
            f"{name} {value!r} is not a date; write it as YYYY-MM-DD (inclusive)"
        ) from None


def known_metrics(settings: Settings | None = None) -> list[str]:
    """'domain.metric' of every registered metric and every metric with rows in the marts."""
    settings = settings or load_settings()
    sql = (
        f"select domain || '.' || ref as metric_key from {relation(METRIC_REGISTRY, settings)}"
        f" union select domain || '.' || metric from {relation(BY_DATE, settings)}"
        f" union select domain || '.' || metric from {relation(BY_DATE_AND_OBJECT, settings)}"
    )
    return sorted(str(row["metric_key"]) for row in fetch(sql, None, settings))


def statistics(
    metric: str,
    period: str,
    start: DateBound = None,
    end: DateBound = None,
    object: ObjectFilter = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """The statistic rows of `metric` ('domain.metric') for `period`, ordered by date.

    - `period`: day, week (rolling 7 days ending on the date), days_28, month
      (rolling 30 days) or lifetime (everything up to and including the date).
    - `start`, `end`: inclusive dates (a `date` or 'YYYY-MM-DD'); None = no bound.
    - `object`: None = by date (statistics_by_date: domain, metric, period, date,
      value); True = by object, every object type (statistics_by_date_and_object:
      + object_type, object_id; ordered by date, object_type, object_id); a string
      = by object, only that object_type (e.g. "account").

    Values are `Decimal` (the marts' numeric). An unknown metric raises an error
    listing the known ones; a known metric without rows in the range gives [].
    """
    settings = settings or load_settings()
    domain, metric_ref = _split_metric(metric)
    _check_period(period)
    start_date = _to_date(start, "start")
    end_date = _to_date(end, "end")
    if object is not None and not isinstance(object, bool | str):
        raise StatisticsQueryError(
            f"object {object!r} must be None (by date), True (every object type) "
            "or an object type such as 'account'"
        )
    by_object = object is not None and object is not False
    table = BY_DATE_AND_OBJECT if by_object else BY_DATE
    columns = BY_OBJECT_COLUMNS if by_object else BY_DATE_COLUMNS
    where = ["domain = :domain", "metric = :metric", "period = :period"]
    params: dict[str, Any] = {"domain": domain, "metric": metric_ref, "period": period}
    if start_date is not None:
        where.append("date >= :start_date")
        params["start_date"] = start_date
    if end_date is not None:
        where.append("date <= :end_date")
        params["end_date"] = end_date
    if isinstance(object, str):
        where.append("object_type = :object_type")
        params["object_type"] = object
    order = "date, object_type, object_id" if by_object else "date"
    sql = (
        f"select {', '.join(columns)} from {relation(table, settings)} "
        f"where {' and '.join(where)} order by {order}"
    )
    rows = fetch(sql, params, settings)
    if by_object:
        rows = _fill_series(rows, where, params, period, start_date, end_date, settings)
    if not rows:
        _explain_empty(metric, object, settings)
    return rows


def _explain_empty(metric: str, object: ObjectFilter, settings: Settings) -> None:
    """No rows: raise when the metric (or object type) is unknown; else it is just empty."""
    known = known_metrics(settings)
    if metric not in known:
        raise ValueErrorWithKnownValues(
            "metric",
            metric,
            known,
            "Register your own metrics in a seed named by the dbt var trackhouse_metrics_seeds "
            "(docs/statistics.md).",
        )
    if isinstance(object, str):
        domain, metric_ref = _split_metric(metric)
        types = fetch(
            f"select distinct object_type from {relation(BY_DATE_AND_OBJECT, settings)} "
            "where domain = :domain and metric = :metric",
            {"domain": domain, "metric": metric_ref},
            settings,
        )
        known_types = [str(row["object_type"]) for row in types]
        if known_types and object not in known_types:
            raise ValueErrorWithKnownValues(
                f"object type of {metric}",
                object,
                known_types,
                "Pass one of them, or object=True for all.",
            )


def _fill_series(
    rows: list[dict[str, Any]],
    where: list[str],
    params: dict[str, Any],
    period: str,
    start_date: date | None,
    end_date: date | None,
    settings: Settings,
) -> list[dict[str, Any]]:
    """The sparse by-object rows with the dates of each series they leave out filled in.

    A series (statistics_object_series) runs from the object's first date to the
    as-of date. A date of it without a row is 0 (day, rolling periods: no data
    in the window) or the value of the series' previous row (lifetime: it did
    not change). Rows outside every series (recorded statistics) stay as they are.
    """
    series_where = [w for w in where if not w.startswith("date ")]
    series = fetch(
        f"select domain, metric, object_type, object_id, first_date, as_of_date "
        f"from {relation(OBJECT_SERIES, settings)} where {' and '.join(series_where)}",
        params,
        settings,
    )
    if not series:
        return rows
    by_key = {(r["object_type"], r["object_id"], r["date"]): r for r in rows}
    # Lifetime before the range: the latest row of each object before start_date.
    carried: dict[tuple[str, str], Any] = {}
    if period == "lifetime" and start_date is not None:
        mart = relation(BY_DATE_AND_OBJECT, settings)
        latest = fetch(
            f"select rows_.object_type, rows_.object_id, rows_.value from {mart} as rows_ "
            f"inner join (select object_type, object_id, max(date) as latest_date from {mart} "
            f"where {' and '.join(series_where)} and date < :start_date "
            "group by object_type, object_id) as latest "
            "on rows_.object_type = latest.object_type and rows_.object_id = latest.object_id "
            f"and rows_.date = latest.latest_date "
            f"where {' and '.join('rows_.' + w for w in series_where)}",
            params,
            settings,
        )
        carried = {(r["object_type"], r["object_id"]): r["value"] for r in latest}
    filled = list(rows)
    for one in series:
        object_key = (one["object_type"], one["object_id"])
        first = max(one["first_date"], start_date) if start_date else one["first_date"]
        last = min(one["as_of_date"], end_date) if end_date else one["as_of_date"]
        value = carried.get(object_key, ZERO)
        day = first
        while day <= last:
            row = by_key.get((*object_key, day))
            if row is not None:
                value = row["value"]
            else:
                filled.append(
                    {
                        "domain": one["domain"],
                        "metric": one["metric"],
                        "period": period,
                        "date": day,
                        "object_type": one["object_type"],
                        "object_id": one["object_id"],
                        "value": value if period == "lifetime" else ZERO,
                    }
                )
            day += timedelta(days=1)
    filled.sort(key=lambda r: (r["date"], r["object_type"], r["object_id"]))
    return filled
