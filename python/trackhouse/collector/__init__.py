"""A Segment-compatible HTTP collector: real tracking SDKs send straight to trackhouse.

`create_app(config)` is the ASGI app; `serve(...)` runs it on uvicorn. Every
accepted batch is appended (fsync'd) to the spool before the 200; the drain
(`trackhouse.spool.drain`) loads the spool like `trackhouse load`. See docs/collector.md.
"""

from .app import create_app
from .config import CollectorConfig, hash_write_key, load_config
from .server import serve

__all__ = ["CollectorConfig", "create_app", "hash_write_key", "load_config", "serve"]
