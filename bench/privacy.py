"""What suppression costs the loader, and what forget and prune take.

    .venv/bin/python bench/privacy.py [N]      (default 200,000 events)

Loads the same N events (80% page views with tracking parameters, 20% tracks, 20,000
users, 50,000 devices) into two scratch DuckDB files: one with an empty suppression list,
one where 1,000 users were forgotten first. Then times forget of one user and a prune.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import duckdb_env


def events(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        at = (start + timedelta(seconds=rng.randrange(86400 * 120))).isoformat()
        user = f"user-{rng.randrange(20_000)}"
        device = f"dev-{rng.randrange(50_000)}"
        if rng.random() < 0.8:
            url = f"https://shop.example/p/{i}?utm_source=s{i % 7}&utm_medium=cpc&ref={i}"
            event = {
                "type": "page",
                "messageId": f"m{i}",
                "timestamp": at,
                "anonymousId": device,
                "userId": user if rng.random() < 0.5 else None,
                "context": {"page": {"url": url}, "userAgent": "Mozilla/5.0"},
            }
        else:
            event = {
                "type": "track",
                "messageId": f"m{i}",
                "timestamp": at,
                "userId": user,
                "event": "view",
            }
        out.append(orjson.dumps(event))
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    lines = events(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.ndjson"
        path.write_bytes(b"\n".join(lines) + b"\n")
        for label, forgotten in (("empty suppression list", 0), ("1,000 users forgotten", 1000)):
            db = Path(tmp) / f"{forgotten}.duckdb"
            os.environ.update(duckdb_env(db))
            from trackhouse.loader import load_files
            from trackhouse.privacy import forget, prune
            from trackhouse.settings import load_settings

            settings = load_settings()
            if forgotten:
                forget([f"user-{i}" for i in range(forgotten)], settings=settings)
            started = time.perf_counter()
            report = load_files([path], settings=settings)
            took = time.perf_counter() - started
            print(
                f"load {n:,} events, {label}: {took:.2f} s ({n / took:,.0f}/s), "
                f"accepted {report.accepted:,}, rejected {report.rejected:,}"
            )
        started = time.perf_counter()
        result = forget(["user-4242"], settings=settings)
        print(
            f"forget one user ({result.rows_deleted:,} rows): {time.perf_counter() - started:.2f} s"
        )
        started = time.perf_counter()
        pruned = prune(
            settings,
            raw_retention_days=60,
            url_query_retention_days=60,
            user_agent_retention_days=60,
            now=datetime(2024, 5, 1, tzinfo=UTC),
        )
        print(f"prune ({pruned.total:,} rows): {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
