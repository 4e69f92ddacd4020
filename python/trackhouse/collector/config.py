"""The collector's configuration: write keys (stored hashed), limits, CORS origins, spool.

Write keys are never stored in clear. Each source (one per app or website) has
its own key; the configuration holds `sha256:<hex>` of the key and the source's
name. Three ways to give them, later ones added to earlier ones:

1. a TOML file (`--config collector.toml` or `$TRACKHOUSE_COLLECTOR_CONFIG`)::

       [collector]
       spool_dir = "/var/lib/trackhouse/spool"
       cors_origins = ["https://shop.example"]
       [collector.write_keys]
       web = "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
       backend = "sha256:..."

2. the environment: `TRACKHOUSE_COLLECTOR_WRITE_KEYS="web=sha256:<hex>,backend=sha256:<hex>"`;
3. on the command line: `--write-key web=sha256:<hex>` (or `--write-key web=<the key>`,
   hashed at start-up; handy locally, but the key then shows in `ps`).

`python -m trackhouse.collector hash-key KEY` prints the `sha256:` form of a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError

ENV_CONFIG_FILE = "TRACKHOUSE_COLLECTOR_CONFIG"
ENV_WRITE_KEYS = "TRACKHOUSE_COLLECTOR_WRITE_KEYS"
ENV_CORS_ORIGINS = "TRACKHOUSE_COLLECTOR_CORS_ORIGINS"
# How `serve` hands the resolved configuration (hashes only) to uvicorn's worker processes.
ENV_RUNTIME = "TRACKHOUSE_COLLECTOR_RUNTIME"

# Segment's limits (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/)
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
DEFAULT_MAX_SPOOL_BYTES = 256 * 2**20

_HASHED = re.compile(r"^sha256:[0-9a-f]{64}$")
_SOURCE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def hash_write_key(key: str) -> str:
    """The form a write key is stored in: `sha256:<64 hex digits>`."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _stored_form(source: str, value: str) -> str:
    if not _SOURCE.match(source):
        raise ConfigError(
            f"write key source name {source!r} is not valid; use 1-64 letters, digits, "
            "'_', '.' or '-' (e.g. web, ios, backend)"
        )
    value = value.strip()
    if not value:
        raise ConfigError(f"the write key of {source!r} is empty; give sha256:<hex> or a key")
    if value.lower().startswith("sha256:"):
        value = value.lower()
        if not _HASHED.match(value):
            raise ConfigError(
                f"write key hash {value!r} of source {source!r} is not sha256: followed by 64 "
                "hex digits; make it with `python -m trackhouse.collector hash-key KEY`"
            )
        return value
    return hash_write_key(value)


def parse_write_keys(items: Iterable[str]) -> dict[str, str]:
    """`source=sha256:<hex>` (or `source=<key>`) items -> {hash: source}."""
    keys: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            source, sep, value = part.partition("=")
            if not sep:
                raise ConfigError(
                    f"write key setting {part!r} has no '='; write it as SOURCE=sha256:<hex> "
                    "(e.g. web=sha256:5e88...)"
                )
            keys[_stored_form(source.strip(), value)] = source.strip()
    return keys


@dataclass(frozen=True)
class CollectorConfig:
    """Everything a collector process needs. `write_keys` maps sha256:<hex> -> source name."""

    # Empty: the warehouse's spool directory (Settings.spool_dir, $TRACKHOUSE_SPOOL_DIR).
    spool_dir: str = ""
    write_keys: Mapping[str, str] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = ()
    max_spool_bytes: int = DEFAULT_MAX_SPOOL_BYTES
    max_event_bytes: int = MAX_EVENT_BYTES
    max_batch_bytes: int = MAX_BATCH_BYTES
    max_batch_events: int = MAX_BATCH_EVENTS
    # The URL browsers reach the collector at (behind a proxy: the public https URL);
    # empty = taken from each request. Used by the settings endpoint and the demo page.
    public_url: str = ""
    demo: bool = False
    # The demo page's write key (source "demo"), in clear: a browser key is public anyway.
    demo_write_key: str = ""
    # Where `npm install` put @segment/analytics-next for the demo page.
    node_modules: str = ""
    # Whether to log one JSON access line per request to stderr.
    access_log: bool = True

    def source_for(self, write_key: str | None) -> str | None:
        """The source name of a write key, or None when it is not configured."""
        if not write_key:
            return None
        return self.write_keys.get(hash_write_key(write_key))

    def to_json(self) -> str:
        data = asdict(self)
        data["write_keys"] = dict(self.write_keys)
        data["cors_origins"] = list(self.cors_origins)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> CollectorConfig:
        data = json.loads(text)
        data["cors_origins"] = tuple(data.get("cors_origins", ()))
        return cls(**data)


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"collector config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"collector config file {str(path)!r} is not valid TOML: {exc}") from None
    section = data.get("collector", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [collector] must be a table")
    known = {f for f in CollectorConfig.__dataclass_fields__} - {"write_keys"}
    unknown = set(section) - known - {"write_keys"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown collector setting(s) {', '.join(sorted(unknown))}; "
            f"known: write_keys, {', '.join(sorted(known))}"
        )
    out = {k: v for k, v in section.items() if k != "write_keys"}
    keys = section.get("write_keys", {})
    if not isinstance(keys, dict):
        raise ConfigError(f"{path}: [collector.write_keys] must map source names to sha256:<hex>")
    out["write_keys"] = [f"{source}={value}" for source, value in keys.items()]
    return out


def load_config(
    *,
    config_file: str | os.PathLike[str] | None = None,
    write_keys: Iterable[str] = (),
    spool_dir: str | os.PathLike[str] | None = None,
    cors_origins: Iterable[str] = (),
    **overrides: Any,
) -> CollectorConfig:
    """The configuration from the TOML file, the environment and explicit arguments
    (in that order; write keys and CORS origins add up, other values override)."""
    settings: dict[str, Any] = {}
    key_items: list[str] = []
    origins: list[str] = []
    path = config_file or os.environ.get(ENV_CONFIG_FILE)
    if path:
        from_file = _from_toml(Path(path))
        key_items += from_file.pop("write_keys")
        origins += list(from_file.pop("cors_origins", ()))
        settings |= from_file
    if os.environ.get(ENV_WRITE_KEYS):
        key_items.append(os.environ[ENV_WRITE_KEYS])
    if os.environ.get(ENV_CORS_ORIGINS):
        origins += [o.strip() for o in os.environ[ENV_CORS_ORIGINS].split(",") if o.strip()]
    key_items += list(write_keys)
    origins += list(cors_origins)
    if spool_dir is not None:
        settings["spool_dir"] = str(spool_dir)
    settings |= {k: v for k, v in overrides.items() if v is not None}
    config = CollectorConfig(**settings)
    return replace(
        config,
        write_keys=parse_write_keys(key_items),
        cors_origins=tuple(dict.fromkeys(o.rstrip("/") for o in origins)),
    )


def with_demo_key(config: CollectorConfig) -> CollectorConfig:
    """With --demo: a write key for the demo page (generated unless given), source "demo"."""
    if not config.demo:
        return config
    key = config.demo_write_key or secrets.token_urlsafe(18)
    return replace(
        config, demo_write_key=key, write_keys={**config.write_keys, hash_write_key(key): "demo"}
    )
