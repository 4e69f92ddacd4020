"""trackhouse: product usage, period statistics and marketing attribution in your warehouse.

The application side writes raw events (``record_activity``, ``record_touchpoint``,
``record_conversion``, ``identify``, ``record_user``, ``record_account``,
``record_statistic``) or loads NDJSON files (``load_files``); dbt builds the marts.
"""

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
from .loader import LoadReport, load_files
from .middleware import TrackhouseASGIMiddleware, TrackhouseWSGIMiddleware
from .query.activity import (
    active_users_by_period,
    calendar_monthly_usage,
    count_active_users,
    daily_usage,
    subscription_usage,
)
from .query.attribution import attribute_conversions
from .query.statistics import statistics
from .settings import Settings, load_settings
from .spool import SpoolFullError

__all__ = [
    "ConfigError",
    "InvalidEventError",
    "LoadReport",
    "Settings",
    "SpoolFullError",
    "Tracker",
    "TrackhouseASGIMiddleware",
    "TrackhouseError",
    "TrackhouseWSGIMiddleware",
    "WarehouseBusyError",
    "active_users_by_period",
    "attribute_conversions",
    "calendar_monthly_usage",
    "confirm_conversion",
    "count_active_users",
    "daily_usage",
    "deactivate_conversion",
    "flush",
    "get_tracker",
    "identify",
    "load_files",
    "load_settings",
    "record_account",
    "record_activity",
    "record_conversion",
    "record_statistic",
    "record_touchpoint",
    "record_user",
    "statistics",
    "subscription_usage",
]
