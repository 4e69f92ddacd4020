"""What hashing ids at ingestion (TRACKHOUSE_HASH_IDS=1) costs a load.

    .venv/bin/python bench/id_hashing.py [N]      (default 200,000 events)

Loads the same N events as bench/privacy.py (80% page views with tracking parameters,
20% tracks, 20,000 users, 50,000 devices) into two scratch DuckDB files, ids as sent
and ids hashed, and prints the time of each load and of the hashing step alone.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import duckdb_env
from privacy import events


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    lines = events(n)
    from trackhouse import privacy
    from trackhouse.loader import load_files
    from trackhouse.settings import load_settings

    spent = [0.0]
    original = privacy.pseudonymise

    def timed(batch, settings):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        original(batch, settings)
        spent[0] += time.perf_counter() - started

    privacy.pseudonymise = timed
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.ndjson"
        path.write_bytes(b"\n".join(lines) + b"\n")
        for label, hashed in (("ids as sent", "0"), ("ids hashed", "1")):
            os.environ.update(duckdb_env(Path(tmp) / f"{hashed}.duckdb"))
            os.environ[privacy.HASH_ENV] = hashed
            os.environ[privacy.KEY_ENV] = "bench key"
            settings = load_settings()
            spent[0] = 0.0
            started = time.perf_counter()
            report = load_files([path], settings=settings)
            took = time.perf_counter() - started
            print(
                f"load {n:,} events, {label}: {took:.2f} s ({n / took:,.0f}/s), "
                f"accepted {report.accepted:,}; hashing step {spent[0]:.2f} s"
            )


if __name__ == "__main__":
    main()
