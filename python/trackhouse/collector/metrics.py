"""Counters of one collector process, in the Prometheus text format (/metrics).

Each uvicorn worker is a process with its own counters; every line carries the
worker's `pid` label so a scraper that sums over `pid` gets the totals. The spool
depth is read from disk, so it is the same whichever worker answers.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable

_HELP = {
    "trackhouse_collector_requests_total": "HTTP requests answered, by status code",
    "trackhouse_collector_events_received_total": "messages stored in the spool",
    "trackhouse_collector_events_rejected_total": (
        "messages refused, by reason code (a refused whole request counts its messages as 0)"
    ),
    "trackhouse_collector_requests_rejected_total": "requests refused as a whole, by code",
    "trackhouse_collector_bytes_received_total": "request body bytes read (as sent, before gzip)",
    "trackhouse_collector_spool_depth_bytes": "bytes waiting in the spool to be drained",
}


class Metrics:
    def __init__(self, spool_depth: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self._spool_depth = spool_depth

    def add(self, name: str, value: int = 1, **labels: str) -> None:
        with self._lock:
            self._counters[(name, tuple(sorted(labels.items())))] += value

    def value(self, name: str, **labels: str) -> int:
        with self._lock:
            return self._counters[(name, tuple(sorted(labels.items())))]

    def render(self) -> str:
        pid = str(os.getpid())
        lines: list[str] = []
        with self._lock:
            items = sorted(self._counters.items())
        seen: set[str] = set()
        for (name, labels), value in items:
            if name not in seen:
                seen.add(name)
                lines += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} counter"]
            label_text = ",".join(f'{k}="{v}"' for k, v in (*labels, ("pid", pid)))
            lines.append(f"{name}{{{label_text}}} {value}")
        gauge = "trackhouse_collector_spool_depth_bytes"
        lines += [
            f"# HELP {gauge} {_HELP[gauge]}",
            f"# TYPE {gauge} gauge",
            f"{gauge} {self._spool_depth()}",
        ]
        return "\n".join(lines) + "\n"
