"""`trackhouse load`: NDJSON files (Segment / RudderStack spec, optionally .gz).

Reads line by line, validates each event, writes in batches (one transaction
each, so a crash leaves no partial batch), and accounts for every line:
received = accepted + rejected + duplicates skipped.
"""

from __future__ import annotations

import bisect
import gzip
import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from . import privacy
from .errors import TrackhouseError
from .fastpath import PARALLEL, FastPath, FastRows
from .parsing import (  # noqa: F401 - rejected_id is imported from here by ingest
    MAX_EVENT_BYTES,
    Batch,
    add_or_reject,
    reject,
    rejected_id,
)
from .settings import Settings, load_settings
from .writer import WriteResult, write_batch

log = logging.getLogger("trackhouse")
BATCH_SIZE = 100_000
# PostgreSQL: COPY costs little per batch, so smaller batches let the writer start on
# the first sooner and overlap the parse for longer: 100,000 events load in 2.4x the
# time of `psql \copy` with 25,000-event batches, 3.0x with 100,000. Below 50,000 the
# parse's cost per chunk (planning, merging) outweighs that: 1M events in 14.6 s with
# 50,000, 15.6 s with 25,000 (medians of 6 paired runs; 100k events: the same). DuckDB
# keeps the larger one: each transaction there updates the primary-key indexes
# (bench/README.md).
POSTGRES_BATCH_SIZE = 50_000


def default_batch_size(settings: Settings) -> int:
    """Events per transaction when the caller does not say."""
    return POSTGRES_BATCH_SIZE if settings.output["type"] == "postgres" else BATCH_SIZE


def fast_parallel(settings: Settings) -> int:
    """Slices the vectorised path judges at once (fastpath.PARALLEL), on DuckDB only:
    PostgreSQL's COPY and Spark's session (in this process) need the other core."""
    return PARALLEL if settings.is_duckdb else 1


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
    """Add one NDJSON line to `batch`, or a rejected row; returns the rejection
    reason, if any. Never raises: whatever the bytes, the line is accounted for."""
    reason: str | None
    if len(line) > MAX_EVENT_BYTES:
        reason = (
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
        except Exception as exc:  # pragma: no cover - orjson raises JSONDecodeError
            reason = f"internal error while parsing: {type(exc).__name__}: {exc}"
        else:
            return add_or_reject(
                batch,
                event,
                payload=payload,
                source=source,
                line_number=line_number,
                received_at=received_at,
                allowed_events=allowed_events,
                api=source == "api",  # spooled Python API calls (spool.drain)
            )
    reject(
        batch,
        payload=payload,
        reason=reason,
        source=source,
        line_number=line_number,
        received_at=received_at,
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


# A chunk is at most this many lines and (but for one longer line) about this many
# bytes (up to one read of READ_BYTES more).
CHUNK_BYTES = 64 * 1024 * 1024
READ_BYTES = 1024 * 1024


@dataclass
class Lines:
    """A chunk of NDJSON lines in one buffer: line i is data[starts[i]:starts[i + 1]]
    (with its line break; data ends with the last line), numbered numbers[i]
    (1-based, blank lines included)."""

    data: bytes
    starts: list[int]
    numbers: list[int]

    def __len__(self) -> int:
        return len(self.numbers)

    def line(self, i: int) -> bytes:
        """Line i as the payload is kept: without its line break."""
        return self.data[self.starts[i] : self.starts[i + 1]].rstrip(b"\r\n")

    @classmethod
    def of(cls, chunk: list[tuple[int, bytes]]) -> Lines:
        """From (line number, line) pairs."""
        starts, pos = [0], 0
        for _, line in chunk:
            pos += len(line) + 1
            starts.append(pos)
        data = b"".join(line + b"\n" for _, line in chunk)
        return cls(data, starts, [n for n, _ in chunk])

    def table(self) -> pa.Table:
        """line_number and line (text, without its line break) as Arrow, built from the
        chunk's bytes in one pass; a line that is not UTF-8 is null here (Python
        rejects it)."""
        n, data = len(self), self.data
        # rare: strip line by line. (One byte is searched ~20x faster than a pair.)
        if b"\r" in data and (b"\r\n" in data or data.endswith(b"\r")):
            texts: list[str | None] = []
            for i in range(n):
                try:
                    texts.append(self.line(i).decode("utf-8"))
                except UnicodeDecodeError:
                    texts.append(None)
            lines = pa.array(texts, pa.large_string())
        else:
            # Every line but the last ends with one b"\n": drop them all at once.
            offsets = [start - i for i, start in enumerate(self.starts)]
            stripped = data.replace(b"\n", b"")
            offsets[-1] = len(stripped)
            bad = _not_utf8(data, self.starts)
            valid = (
                pa.array([i not in bad for i in range(n)], pa.bool_()).buffers()[1] if bad else None
            )
            lines = pa.Array.from_buffers(
                pa.large_string(),
                n,
                [valid, pa.array(offsets, pa.int64()).buffers()[1], pa.py_buffer(stripped)],
                null_count=len(bad),
            )
        return pa.table({"line_number": pa.array(self.numbers, pa.int64()), "line": lines})


def _not_utf8(data: bytes, starts: list[int], window: int = 1 << 18) -> set[int]:
    """The indexes of the lines that are not valid UTF-8 (a line break ends any
    sequence, so each line is judged alone). Decoded a window of lines at a time:
    a decoding error copies what it was decoding."""
    if data.isascii():
        return set()
    try:
        data.decode("utf-8")
        return set()
    except UnicodeDecodeError:
        pass
    bad: set[int] = set()
    i, n = 0, len(starts) - 1
    while i < n:
        j = min(bisect.bisect_right(starts, starts[i] + window), n)
        j = max(j, i + 1)
        try:
            data[starts[i] : starts[j]].decode("utf-8")
            i = j
        except UnicodeDecodeError as exc:
            k = bisect.bisect_right(starts, starts[i] + exc.start) - 1
            bad.add(k)
            i = k + 1
    return bad


def _chunks(stream: IO[bytes], size: int, max_bytes: int = CHUNK_BYTES) -> Iterator[Lines]:
    """The stream's lines, `size` lines or `max_bytes` at a time (blank lines
    included: parse_chunk skips them). The stream is read READ_BYTES at a time, only
    as far as the chunk needs, so a chunk of few lines holds little more than them."""
    carry = b""
    first = 1
    eof = False
    while not eof or carry:
        blocks = [carry] if carry else []
        have, breaks = len(carry), carry.count(b"\n")
        # Until the chunk is full, or (a line longer than max_bytes) has one whole line.
        while not eof and ((breaks < size and have < max_bytes) or not breaks):
            block = stream.read(READ_BYTES)
            eof = not block
            blocks.append(block)
            have += len(block)
            breaks += block.count(b"\n")
        data = blocks[0] if len(blocks) == 1 else b"".join(blocks)
        del blocks
        if not data:
            return
        # Where each of the first `size` lines starts: a `find` per line break is ~4x
        # cheaper than splitting the chunk into a bytes object per line.
        starts = [0]
        add, find, pos = starts.append, data.find, -1
        for _ in range(size):
            pos = find(b"\n", pos + 1)
            if pos < 0:
                break
            add(pos + 1)
        pos = starts[-1]
        if eof and len(starts) <= size and pos < len(data):
            starts.append(len(data))  # the last line has no line break
        count, cut = len(starts) - 1, starts[-1]
        yield Lines(
            data if cut == len(data) else data[:cut], starts, list(range(first, first + count))
        )
        first += count
        carry = data[cut:]


def parse_chunk(
    chunk: Lines | list[tuple[int, bytes]],
    *,
    source: str,
    received_at: datetime,
    allowed_events: Collection[str] | None,
    report: LoadReport,
    fast: FastPath | None,
) -> Batch:
    """Validate a chunk of lines into one Batch: plain events through the
    vectorised path, everything else through the Python parser."""
    lines = chunk if isinstance(chunk, Lines) else Lines.of(chunk)
    batch = Batch()
    handled: set[int] = set()
    fast_rows = None
    if fast is not None:
        try:
            fast_rows = fast.run_table(
                lines.table(),
                source=source,
                received_at=received_at,
                allowed_events=allowed_events,
            )
            handled = set(fast_rows.line_numbers)
        except Exception:  # the fast path only ever speeds things up
            log.warning(
                "trackhouse: vectorised parse failed; parsing the chunk in Python", exc_info=True
            )
            fast_rows = None
    report.received += len(handled)
    for i, line_number in enumerate(lines.numbers):
        if line_number in handled:
            continue
        line = lines.line(i)
        if not line.strip():
            continue  # blank lines are not events
        report.received += 1
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
    if fast_rows is not None and len(fast_rows.numbers):
        _merge_fast(batch, fast_rows)
    return batch


def _merge_fast(batch: Batch, fast: FastRows) -> None:
    """Add the vectorised rows to `batch`. A messageId on several lines of the
    chunk keeps its first line, whichever path parsed it; the rest are duplicates."""
    python_events = batch.rows.get("events", ())
    python_numbers = pa.array([row[6] for row in python_events], pa.int64())
    ids = pa.chunked_array(
        [pa.array([row[0] for row in python_events], pa.string()), fast.message_ids],
        pa.string(),
    )
    keep = None
    if len(pc.unique(ids)) < len(ids):
        numbers = pa.chunked_array([python_numbers, fast.numbers], pa.int64())
        firsts = pa.table({"m": ids, "n": numbers}).group_by("m").aggregate([("n", "min")])
        keep = firsts.column("n_min").combine_chunks()
        batch.duplicates_in_batch += len(ids) - len(keep)
    dropped = None
    if keep is not None:  # the few lines of the vectorised rows that lost
        dropped = fast.numbers.filter(pc.invert(pc.is_in(fast.numbers, value_set=keep)))
    for name, table in fast.tables.items():
        if dropped is not None and len(dropped):
            lost = pc.is_in(table.column("line_number"), value_set=dropped)
            table = table.filter(pc.invert(lost))
        if name != "events":
            table = table.drop_columns(["line_number"])
        batch.arrow.setdefault(name, []).append(table)
    if keep is not None and len(python_numbers):
        kept = pc.is_in(python_numbers, value_set=keep).to_pylist()
        losing = {row[0] for row, k in zip(python_events, kept, strict=True) if not k}
        if losing:
            for name, rows in batch.rows.items():
                batch.rows[name] = [r for r in rows if r[0] not in losing]


def load_stream(
    stream: IO[bytes],
    source: str,
    *,
    settings: Settings,
    report: LoadReport,
    allowed_events: Collection[str] | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
    fast: FastPath | None = None,
) -> None:
    """Parse chunk N+1 while chunk N is being written (both release the GIL in
    DuckDB / the driver); batches are still written one at a time, in order."""
    received_at = datetime.now(UTC).replace(tzinfo=None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trackhouse-writer") as writer:
        pending: tuple[Future[WriteResult], Batch, int] | None = None
        for chunk in _chunks(stream, batch_size):
            batch = parse_chunk(
                chunk,
                source=source,
                received_at=received_at,
                allowed_events=allowed_events,
                report=report,
                fast=fast,
            )
            privacy.suppress(batch, settings, report)  # forgotten ids: rejected "suppressed"
            if pending is not None:
                _account(report, *pending, on_batch)
            pending = (writer.submit(write_batch, settings, batch), batch, chunk.numbers[-1])
        if pending is not None:
            _account(report, *pending, on_batch)


def _account(
    report: LoadReport,
    future: Future[WriteResult],
    batch: Batch,
    last_line: int,
    on_batch: Callable[[int], None] | None,
) -> None:
    result = future.result()
    report.accepted += result.new_events
    report.duplicates += result.duplicate_events + batch.duplicates_in_batch
    if on_batch:
        on_batch(last_line)


def load_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    settings: Settings | None = None,
    allowed_events: Collection[str] | None = None,
    progress: bool | None = None,
    batch_size: int | None = None,
    vectorised: bool = True,
) -> LoadReport:
    """Load NDJSON files (or '-' for stdin) into the raw tables of the target.

    `vectorised=False` parses every line in Python (same rows, slower); the
    vectorised path handles plain page views in bulk (see fastpath.py).
    """
    settings = settings or load_settings()
    batch_size = batch_size or default_batch_size(settings)
    report = LoadReport()
    started = time.monotonic()
    fast = FastPath(fast_parallel(settings)) if vectorised else None
    try:
        for path in map(str, paths):
            _load_path(path, settings, report, allowed_events, progress, batch_size, fast)
    finally:
        if fast is not None:
            fast.close()
    report.seconds = time.monotonic() - started
    return report


def _load_path(
    path: str,
    settings: Settings,
    report: LoadReport,
    allowed_events: Collection[str] | None,
    progress: bool | None,
    batch_size: int,
    fast: FastPath | None,
) -> None:
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
            fast=fast,
        )
    finally:
        bar.update(size, report.received, force=True)
        if stream is not sys.stdin.buffer:
            stream.close()


def _tell(f: Any) -> int:
    try:
        return int(f.tell())
    except (OSError, ValueError, AttributeError):
        return 0
