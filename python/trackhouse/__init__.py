"""trackhouse: product usage, period statistics and marketing attribution in your warehouse.

The application side writes raw events (``record_activity``, ``record_touchpoint``,
``record_conversion``, ``identify``, ``record_user``, ``record_account``,
``record_statistic``) or loads NDJSON files (``load_files``); dbt builds the marts.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The application side (record_*, Tracker, middlewares) is imported eagerly and stays
# light: no DuckDB, Arrow, Jinja or YAML in a web worker that writes to PostgreSQL.
from .errors import ConfigError, InvalidEventError, TrackhouseError, WarehouseBusyError
from .ingest import (
    Tracker,
    confirm_conversion,
    deactivate_conversion,
    flush,
    get_tracker,
    identify,
    record_account,
    record_activity,
    record_conversion,
    record_statistic,
    record_touchpoint,
    record_user,
)
from .middleware import TrackhouseASGIMiddleware, TrackhouseWSGIMiddleware
from .settings import Settings, load_settings
from .spool import SpoolFullError

# The loader and the query API are imported on first use (PEP 562): name -> module.
_LAZY = {
    "LoadReport": ".loader",
    "load_files": ".loader",
    "active_users_by_period": ".query.activity",
    "calendar_monthly_usage": ".query.activity",
    "count_active_users": ".query.activity",
    "daily_usage": ".query.activity",
    "subscription_usage": ".query.activity",
    "attribute_conversions": ".query.attribution",
    "attribution_by_channel": ".query.attribution",
    "attribution_credits": ".query.attribution",
    "active_days_distribution": ".query.engagement",
    "lifecycle": ".query.engagement",
    "retention": ".query.engagement",
    "stickiness": ".query.engagement",
    "statistics": ".query.statistics",
    "ForgetReport": ".privacy",
    "PruneReport": ".privacy",
    "forget": ".privacy",
    "prune": ".privacy",
}

if TYPE_CHECKING:
    from .loader import LoadReport, load_files
    from .privacy import ForgetReport, PruneReport, forget, prune
    from .query.activity import (
        active_users_by_period,
        calendar_monthly_usage,
        count_active_users,
        daily_usage,
        subscription_usage,
    )
    from .query.attribution import (
        attribute_conversions,
        attribution_by_channel,
        attribution_credits,
    )
    from .query.engagement import active_days_distribution, lifecycle, retention, stickiness
    from .query.statistics import statistics


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trackhouse' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ConfigError",
    "ForgetReport",
    "InvalidEventError",
    "LoadReport",
    "PruneReport",
    "Settings",
    "SpoolFullError",
    "Tracker",
    "TrackhouseASGIMiddleware",
    "TrackhouseError",
    "TrackhouseWSGIMiddleware",
    "WarehouseBusyError",
    "active_days_distribution",
    "active_users_by_period",
    "attribute_conversions",
    "attribution_by_channel",
    "attribution_credits",
    "calendar_monthly_usage",
    "confirm_conversion",
    "count_active_users",
    "daily_usage",
    "deactivate_conversion",
    "flush",
    "forget",
    "get_tracker",
    "identify",
    "lifecycle",
    "load_files",
    "load_settings",
    "prune",
    "record_account",
    "record_activity",
    "record_conversion",
    "record_statistic",
    "record_touchpoint",
    "record_user",
    "retention",
    "statistics",
    "stickiness",
    "subscription_usage",
]
