"""`import trackhouse` in a web worker loads only the application side.

A fresh interpreter (so nothing else was imported before) with the PostgreSQL
target imports trackhouse and touches the app-side API and middlewares; the heavy
modules of the loader, the query API and the profile parsing must stay unloaded
until they are used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("duckdb", "pyarrow", "jinja2", "yaml", "sqlalchemy", "duckdb_engine")

PROBE = f"""
import json, sys
import trackhouse
from trackhouse import (
    Tracker, TrackhouseASGIMiddleware, TrackhouseWSGIMiddleware, identify, record_activity,
    record_conversion, record_touchpoint,
)
app_side = sorted(m for m in {HEAVY!r} if m in sys.modules)
trackhouse.count_active_users  # the query API: imported on first use
print(json.dumps({{"app_side": app_side, "after_query": sorted(sys.modules)}}))
"""


def test_import_trackhouse_stays_light_on_postgres() -> None:
    env = {**os.environ, "TRACKHOUSE_TARGET": "postgres"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    assert found["app_side"] == []
    # The lazy names still work, and load what they need then.
    assert "trackhouse.query.activity" in found["after_query"]
    assert "sqlalchemy" in found["after_query"]
