"""`trackhouse load`: NDJSON files (Segment / RudderStack spec, optionally .gz).

Reads line by line, validates each event, writes in batches (one transaction
each, so a crash leaves no partial batch), and accounts for every line:
received = accepted + rejected + duplicates skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from .errors import InvalidEventError, TrackhouseError
from .parsing import MAX_EVENT_BYTES, Batch, add_event
from .settings import Settings, load_settings
from .writer import WriteResult, write_batch

BATCH_SIZE = 50_000
MAX_EXAMPLES = 20


@dataclass
class Rejection:
    source: str
    line_number: int | None
    reason: str


@dataclass
class LoadReport:
    """What happened to every line received."""

    files: list[str] = field(default_factory=list)
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def balanced(self) -> bool:
        return self.received == self.accepted + self.rejected + self.duplicates

    def summary(self) -> str:
        line = (
            f"received {self.received:,} = accepted {self.accepted:,} + rejected {self.rejected:,}"
            f" + duplicates skipped {self.duplicates:,}"
        )
        if self.seconds > 0 and self.received:
            line += f"  ({self.received / self.seconds:,.0f} events/s)"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "received": self.received,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "seconds": round(self.seconds, 3),
            "rejections": [r.__dict__ for r in self.rejections],
        }


def _open(path: str) -> tuple[IO[bytes], int]:
    """A binary stream for a path ('-' = stdin, .gz decompressed) and its size."""
    if path == "-":
        return sys.stdin.buffer, 0
    p = Path(path)
    if not p.is_file():
        raise TrackhouseError(
            f"no such file: {path}; give the path of an NDJSON file (or - for stdin)"
        )
    raw = open(p, "rb")  # noqa: SIM115 - closed by the caller
    size = p.stat().st_size
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), size
    return raw, size


def rejected_id(source: str, line_number: int | None, payload: str) -> str:
    """Stable id of a rejected line, so loading a file twice records it once."""
    digest = hashlib.sha256(f"{source}\0{line_number}\0{payload}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def _decode(line: bytes) -> tuple[str, str | None]:
    """The line as text, and a reason when it is not valid UTF-8."""
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return line.decode("utf-8", "backslashreplace"), (
            f"line is not valid UTF-8 (byte {exc.start}: {line[exc.start : exc.start + 1]!r}); "
            "re-export the file as UTF-8"
        )


def parse_line(
    batch: Batch,
    line: bytes,
    *,
    source: str,
    line_number: int,
    received_at: datetime,
    allowed_events: Collection[str] | None,
) -> str | None:
    """Add one NDJSON line to `batch`; returns the rejection reason, if any."""
    if len(line) > MAX_EVENT_BYTES:
        reason: str | None = (
            f"line is {len(line):,} bytes; events over {MAX_EVENT_BYTES:,} bytes are not accepted "
            "(Segment's own limit is 32 KB); drop the oversized properties and reload the line"
        )
        payload = line.decode("utf-8", "backslashreplace")
    else:
        payload, reason = _decode(line)
    if reason is None:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            reason = f"malformed JSON: {exc}; fix the line so it is one JSON object"
        else:
            try:
                add_event(
                    batch,
                    event,
                    payload=payload,
                    source=source,
                    line_number=line_number,
                    received_at=received_at,
                    allowed_events=allowed_events,
                )
                return None
            except InvalidEventError as exc:
                reason = str(exc)
    assert reason is not None
    batch.rejected.append(
        (
            rejected_id(source, line_number, payload),
            source,
            line_number,
            payload,
            reason,
            received_at,
        )
    )
    return reason


class Progress:
    """A one-line progress report on stderr for large inputs."""

    def __init__(self, label: str, total_bytes: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total_bytes, enabled
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, done_bytes: int, events: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.5):
            return
        self.last = now
        rate = events / max(now - self.started, 1e-9)
        pct = f"{100 * done_bytes / self.total:5.1f}% " if self.total else ""
        sys.stderr.write(f"\r{self.label}: {pct}{events:,} lines, {rate:,.0f}/s")
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


def load_stream(
    stream: IO[bytes],
    source: str,
    *,
    settings: Settings,
    report: LoadReport,
    allowed_events: Collection[str] | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    received_at = datetime.now(UTC).replace(tzinfo=None)
    batch = Batch()
    pending = 0
    line_number = 0
    for line_number, raw in enumerate(stream, start=1):
        line = raw.rstrip(b"\r\n")  # the payload is kept exactly as it was
        if not line.strip():
            continue  # blank lines are not events
        report.received += 1
        pending += 1
        reason = parse_line(
            batch,
            line,
            source=source,
            line_number=line_number,
            received_at=received_at,
            allowed_events=allowed_events,
        )
        if reason is not None:
            report.rejected += 1
            if len(report.rejections) < MAX_EXAMPLES:
                report.rejections.append(Rejection(source, line_number, reason))
        if pending >= batch_size:
            _flush(settings, batch, report)
            batch, pending = Batch(), 0
            if on_batch:
                on_batch(line_number)
    _flush(settings, batch, report)
    if on_batch:
        on_batch(line_number)


def _flush(settings: Settings, batch: Batch, report: LoadReport) -> WriteResult:
    result = write_batch(settings, batch)
    report.accepted += result.new_events
    report.duplicates += result.duplicate_events + batch.duplicates_in_batch
    return result


def load_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    settings: Settings | None = None,
    allowed_events: Collection[str] | None = None,
    progress: bool | None = None,
    batch_size: int = BATCH_SIZE,
) -> LoadReport:
    """Load NDJSON files (or '-' for stdin) into the raw tables of the target."""
    settings = settings or load_settings()
    report = LoadReport()
    started = time.monotonic()
    for path in map(str, paths):
        stream, size = _open(path)
        source = path if path == "-" else str(Path(path).resolve())
        report.files.append(source)
        show = progress if progress is not None else (sys.stderr.isatty() and size > 5_000_000)
        bar = Progress(Path(path).name, size, bool(show))
        raw_file = getattr(stream, "fileobj", stream)
        try:
            load_stream(
                stream,
                source,
                settings=settings,
                report=report,
                allowed_events=allowed_events,
                batch_size=batch_size,
                on_batch=lambda n, f=raw_file, b=bar: b.update(_tell(f), report.received),
            )
        finally:
            bar.update(size, report.received, force=True)
            if stream is not sys.stdin.buffer:
                stream.close()
    report.seconds = time.monotonic() - started
    return report


def _tell(f: Any) -> int:
    try:
        return int(f.tell())
    except (OSError, ValueError, AttributeError):
        return 0
