"""One exception hierarchy: every message names the bad value, what is valid, and the fix."""

from __future__ import annotations

from collections.abc import Iterable


class TrackhouseError(Exception):
    """Base class of every error trackhouse raises on purpose."""


class ConfigError(TrackhouseError):
    """The profile, target or a setting is wrong."""


class InvalidEventError(TrackhouseError, ValueError):
    """An event or API call cannot be accepted; it was written to the rejected table."""


class ValueErrorWithKnownValues(TrackhouseError, ValueError):
    """A value outside a known set: the message lists the valid ones (as dlt does)."""

    def __init__(self, what: str, value: object, known: Iterable[object], fix: str = "") -> None:
        self.what = what
        self.value = value
        self.known = sorted(str(k) for k in known)
        message = f"{what} {value!r} is not one of: {', '.join(self.known)}."
        if fix:
            message += f" {fix}"
        super().__init__(message)


class WarehouseBusyError(TrackhouseError):
    """Another process holds the DuckDB file for writing."""


class WarehouseMissingError(TrackhouseError):
    """A read found no warehouse (nothing is created by a read)."""
