"""The durable spool between the application and the warehouse.

An application call appends one NDJSON line to a local file and returns; a
*drain* later loads whole files into the warehouse through the same loader as
`trackhouse load`. So the application never waits for, nor fails because of,
the warehouse, and nothing a call returned from is lost.

Layout of a spool directory (all files belong to one target):

- ``<source>-<start µs>-<pid>-<seq>.ndjson.open`` — the segment a process is
  appending to. Exactly one per writing process (the pid is in the name) and
  held with an exclusive ``flock`` for as long as that process writes to it.
- ``<...>.ndjson`` — a *sealed* segment: complete, fsync'd, never written
  again, ready for a drain. Any sealed segment also loads with
  ``trackhouse load FILE`` (one Segment-spec message per line).
- ``<...>.rejects`` — API calls that were refused (invalid input): the
  call's payload and the reason, recorded in ``rejected`` by the next drain.

Writes: each `append` is one ``write(2)`` of whole lines on an ``O_APPEND``
descriptor (so the kernel has the bytes when the call returns: a SIGKILL of the
process cannot lose them) and, unless ``sync=False``, an ``fsync`` shared by
every thread that appended meanwhile (group commit), so a machine crash
cannot either. A segment is sealed (fsync, rename) when it reaches
``segment_bytes``, when it is older than ``seal_after`` seconds (checked on
append and by `seal_if_older`, which the Tracker's thread calls), and on close.

Crash recovery: a ``.open`` segment whose lock nobody holds belongs to a dead
process. The drain seals it; if its last line is incomplete (the process died
inside a ``write``, or the machine crashed before an fsync), that line is
completed when it already is a whole JSON object, and otherwise recorded in
``rejected`` with the reason — never silently dropped. (Its call had not
returned, so the application never saw it succeed.)

Full policy: when the spool holds more than ``max_bytes`` (all segments of all
processes not yet drained), `append` raises `SpoolFullError` and keeps
nothing: the spool is the only buffer, there is no hidden memory queue.

Forks (gunicorn/uvicorn workers, multiprocessing): the child closes the
descriptor it inherited (without unlocking it: the parent still owns it) and
opens its own segment on its first append.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .errors import TrackhouseError

if TYPE_CHECKING:  # the drain needs the loader; the app-side import stays light
    from .loader import LoadReport
    from .settings import Settings

log = logging.getLogger("trackhouse.spool")

SEALED = ".ndjson"
OPEN = ".ndjson.open"
NEW = ".ndjson.new"  # created, not yet locked: invisible to drains
REJECTS = ".rejects"
DEFAULT_MAX_BYTES = 256 * 2**20
DEFAULT_SEGMENT_BYTES = 8 * 2**20
DEFAULT_SEAL_AFTER = 2.0
_SOURCE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_RESCAN_SECONDS = 1.0
_names = itertools.count(1)  # unique file names across Spool objects of a process


class SpoolError(TrackhouseError):
    """The spool directory cannot be written (permissions, disk)."""


class SpoolFullError(SpoolError):
    """The spool holds more than its `max_bytes`: the call was NOT recorded.

    `retry_after` is a hint in seconds. Nothing was kept in memory: retry the
    same call (with the same message_id / conversion_id) later, or drop it.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def encode(message: dict[str, Any] | bytes) -> bytes:
    """One spool line (without its newline) for a message dict or pre-encoded JSON."""
    if isinstance(message, bytes | bytearray | memoryview):
        line = bytes(message).rstrip(b"\r\n")
        if b"\n" in line:
            at = line.index(b"\n")
            raise ValueError(
                "a pre-encoded spool message must be one line of JSON; this one contains a "
                f"newline at byte {at}"
            )
        return line
    return orjson.dumps(message, default=_json_default)


def _source_of(name: str) -> str:
    return name.split("-", 1)[0]


def _spool_files(directory: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            yield from it
    except FileNotFoundError:
        return


def depth_bytes(directory: str | os.PathLike[str]) -> int:
    """Bytes waiting in a spool directory (every process's segments and rejects)."""
    total = 0
    for entry in _spool_files(Path(directory)):
        if entry.name.endswith((SEALED, OPEN, REJECTS)):
            with contextlib.suppress(FileNotFoundError):
                total += entry.stat().st_size
    return total


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class Spool:
    """Append-only NDJSON segments in `directory`; thread-safe, one file per process."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        source: str = "api",
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        seal_after: float = DEFAULT_SEAL_AFTER,
    ) -> None:
        if not _SOURCE.match(source):
            raise ValueError(
                f"spool source {source!r} must be lowercase letters, digits or _ "
                "(it names the files and becomes rejected.source), e.g. 'api' or 'collector'"
            )
        self.directory = Path(directory)
        self.source = source
        self.max_bytes = int(max_bytes)
        self.segment_bytes = int(segment_bytes)
        self.seal_after = float(seal_after)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(
                f"cannot create the spool directory {self.directory}: {exc.strerror}; "
                "set TRACKHOUSE_SPOOL_DIR to a writable directory"
            ) from exc
        self._reset()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (s := ref()) and s._after_fork())

    # -- per-process state ------------------------------------------------
    def _reset(self) -> None:
        self._lock = threading.Lock()  # the file, its size and the sequence numbers
        self._sync_lock = threading.Lock()  # one fsync at a time (the group commit)
        self._pid = os.getpid()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened = 0.0
        self._written = 0  # appends written to the current process's files
        self._synced = 0  # appends known to be fsync'd
        self._depth = depth_bytes(self.directory)
        self._scanned = time.monotonic()

    def _after_fork(self) -> None:
        # The inherited descriptor shares the parent's lock: close it without
        # unlocking (the parent keeps writing its segment), start afresh.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._reset()

    def _check_process(self) -> None:
        if self._pid != os.getpid():  # forked without os.fork's hooks (should not happen)
            self._after_fork()

    # -- segments -----------------------------------------------------------
    def _name(self) -> str:
        seq = next(_names)
        return f"{self.source}-{time.time_ns() // 1000:016d}-{self._pid}-{seq:06d}"

    def _open_segment(self) -> None:
        stem = self._name()
        new = self.directory / (stem + NEW)
        fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the segment is sealed
            path = self.directory / (stem + OPEN)
            os.rename(new, path)
            _fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                new.unlink()
            raise
        self._fd, self._path, self._size, self._opened = fd, path, 0, time.monotonic()

    def _seal_locked(self) -> None:
        """Seal the current segment (caller holds `_lock`)."""
        if self._fd is None or self._path is None:
            return
        fd, path = self._fd, self._path
        self._fd, self._path = None, None
        try:
            if self._size:
                os.fsync(fd)
                os.rename(path, path.with_name(path.name[: -len(OPEN)] + SEALED))
            else:
                path.unlink()
            _fsync_dir(self.directory)
            self._synced = self._written
        finally:
            os.close(fd)

    def seal(self) -> None:
        """Seal the current segment now (a drain can then load it)."""
        with self._lock:
            self._check_process()
            self._seal_locked()

    def seal_if_older(self, seconds: float | None = None) -> bool:
        """Seal the current segment if it has data and is older than `seconds`."""
        limit = self.seal_after if seconds is None else seconds
        with self._lock:
            self._check_process()
            if self._fd is not None and self._size and time.monotonic() - self._opened >= limit:
                self._seal_locked()
                return True
        return False

    def close(self) -> None:
        """fsync and seal; the next append opens a new segment."""
        self.seal()

    # -- appending ----------------------------------------------------------------
    def depth_bytes(self) -> int:
        """Bytes waiting in this spool directory (all processes, not yet drained)."""
        return depth_bytes(self.directory)

    def _check_room(self, size: int) -> None:
        now = time.monotonic()
        if now - self._scanned > _RESCAN_SECONDS or self._depth + size > self.max_bytes:
            self._depth, self._scanned = depth_bytes(self.directory), now
        if self._depth + size > self.max_bytes:
            raise SpoolFullError(
                f"the spool {self.directory} holds {self._depth:,} bytes, over its limit of "
                f"{self.max_bytes:,}: no drain has loaded it into the warehouse. This call was "
                "NOT recorded. Run `trackhouse load --spool "
                f"{self.directory}` (or check why the drain fails: see the log), or raise "
                "max_bytes (TRACKHOUSE_SPOOL_MAX_BYTES).",
                retry_after=5.0,
            )

    def append(self, messages: Iterable[dict[str, Any] | bytes], *, sync: bool = True) -> int:
        """Append messages as NDJSON lines; returns the bytes written.

        Returns once the lines are written (a SIGKILL cannot lose them) and,
        with `sync` (the default), fsync'd (a machine crash cannot either).
        Raises `SpoolFullError` when the spool is over `max_bytes` (nothing is
        written) and `SpoolError` when the directory cannot be written.
        """
        data = b"".join(encode(m) + b"\n" for m in messages)
        if not data:
            return 0
        with self._lock:
            self._check_process()
            self._check_room(len(data))
            try:
                if self._fd is not None and (
                    self._size + len(data) > self.segment_bytes
                    or time.monotonic() - self._opened >= self.seal_after
                ):
                    self._seal_locked()
                if self._fd is None:
                    self._open_segment()
                assert self._fd is not None
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                raise SpoolError(
                    f"cannot write the spool {self.directory}: {exc.strerror}; free disk space "
                    "or set TRACKHOUSE_SPOOL_DIR to a writable directory"
                ) from exc
            self._size += len(data)
            self._depth += len(data)
            self._written += 1
            mine = self._written
        if sync:
            self.sync(mine)
        return len(data)

    def sync(self, upto: int | None = None) -> None:
        """fsync what was appended (up to append number `upto`): one fsync serves
        every thread waiting meanwhile."""
        with self._sync_lock:
            with self._lock:
                if upto is not None and self._synced >= upto:
                    return
                target = self._written
                if self._fd is None or self._synced >= target:
                    return
                fd = os.dup(self._fd)  # a rotation may close the original meanwhile
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            with self._lock:
                self._synced = max(self._synced, target)

    def fsync_now(self) -> None:
        """fsync the current segment without taking any lock (for a signal handler,
        which may run while this very thread is inside `append`)."""
        fd = self._fd
        if fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.fsync(fd)

    def append_rejected(
        self, payload: str, reason: str, received_at: datetime | None = None
    ) -> None:
        """Record a refused call (its payload and reason) for the next drain to
        write to `rejected`. Written atomically to a file of its own."""
        record = orjson.dumps(
            {
                "source": self.source,
                "payload": payload,
                "reason": reason,
                "receivedAt": (received_at or datetime.now(UTC).replace(tzinfo=None)).isoformat(),
            }
        )
        with self._lock:
            self._check_process()
            self._check_room(len(record))
            stem = self._name()
        tmp = self.directory / (stem + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(record + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.directory / (stem + REJECTS))
        except OSError as exc:
            raise SpoolError(f"cannot write the spool {self.directory}: {exc.strerror}") from exc

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def status(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """What waits in a spool: for `trackhouse spool status` and health checks.

    `open` segments are being written by live processes, `orphaned` ones by dead
    processes (the next drain recovers them), `sealed` wait for a drain,
    `rejects` are refused calls waiting to be recorded; `oldest_sealed_seconds`
    tells how far behind the drain is.
    """
    directory = Path(directory)
    found: dict[str, Any] = {
        "directory": str(directory),
        "open": 0,
        "orphaned": 0,
        "sealed": 0,
        "rejects": 0,
        "bytes": 0,
        "oldest_sealed_seconds": None,
    }
    now = time.time()
    for entry in _spool_files(directory):
        kind = (
            "sealed"
            if entry.name.endswith(SEALED)
            else "open"
            if entry.name.endswith(OPEN)
            else "rejects"
            if entry.name.endswith(REJECTS)
            else None
        )
        if kind is None:
            continue
        try:
            st = entry.stat()
        except FileNotFoundError:
            continue
        found["bytes"] += st.st_size
        if kind == "open":
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                kind = "orphaned" if _try_lock(fd) else "open"
            finally:
                os.close(fd)  # releases the probe's lock, if it got one
        found[kind] += 1
        if kind == "sealed":
            age = round(now - st.st_mtime, 1)
            oldest = found["oldest_sealed_seconds"]
            found["oldest_sealed_seconds"] = age if oldest is None else max(oldest, age)
    return found


# -- draining -------------------------------------------------------------------
def _repair(fd: int, path: Path) -> tuple[bytes, str] | None:
    """Make an orphaned segment end at a line boundary. Returns the torn last
    line and its reason when it cannot be completed (the caller records it)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    tail_start = max(0, size - 2 * 2**20)
    os.lseek(fd, tail_start, os.SEEK_SET)
    tail = b""
    while len(tail) < size - tail_start:
        chunk = os.read(fd, size - tail_start - len(tail))
        if not chunk:
            break
        tail += chunk
    if tail.endswith(b"\n"):
        return None
    cut = tail.rfind(b"\n")
    last = tail[cut + 1 :]
    if cut < 0 and tail_start > 0:
        raise SpoolError(f"spool segment {path} has a last line over 2 MiB; inspect it by hand")
    try:
        whole = isinstance(orjson.loads(last), dict)
    except orjson.JSONDecodeError:
        whole = False
    if whole:  # only the newline was missing
        os.write(fd, b"\n")
        os.fsync(fd)
        return None
    os.ftruncate(fd, tail_start + cut + 1)
    os.fsync(fd)
    pid = path.name.split("-")[2] if path.name.count("-") >= 3 else "?"
    reason = (
        f"incomplete last line ({len(last):,} bytes) of spool segment {path.name}: its writing "
        f"process (pid {pid}) stopped in the middle of writing it (killed, or the machine "
        "crashed before the data reached the disk), so the call that wrote it never returned "
        "and the application was not told it succeeded; the bytes are kept as this row's payload"
    )
    return last, reason


def recover(directory: str | os.PathLike[str]) -> list[Path]:
    """Seal the segments of dead processes (their lock is free); returns them.

    Called by `drain`; safe while writers are running (a live writer holds its lock).
    """
    directory = Path(directory)
    sealed: list[Path] = []
    now = time.time()
    for entry in sorted(_spool_files(directory), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.name.endswith(NEW) or entry.name.endswith(".tmp"):
            # a writer died between creating and publishing: empty, or never published
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime > 60:
                    path.unlink()
            continue
        if not entry.name.endswith(OPEN):
            continue
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # sealed meanwhile by its writer
        try:
            if not _try_lock(fd) or not path.exists():
                continue  # a live writer
            torn = _repair(fd, path)
            stem = entry.name[: -len(OPEN)]
            if torn is not None:
                _write_reject(directory, stem, _source_of(stem), *torn)
            if os.fstat(fd).st_size:
                target = directory / (stem + SEALED)
                os.rename(path, target)
                sealed.append(target)
            else:
                path.unlink()
            _fsync_dir(directory)
        finally:
            os.close(fd)
    return sealed


def _write_reject(directory: Path, stem: str, source: str, payload: bytes, reason: str) -> None:
    record = orjson.dumps(
        {
            "source": source,
            "payload": payload.decode("utf-8", "backslashreplace"),
            "reason": reason,
            "receivedAt": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        }
    )
    tmp = directory / (stem + ".torn.tmp")
    with open(tmp, "wb") as f:
        f.write(record + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, directory / (stem + ".torn" + REJECTS))


@contextlib.contextmanager
def _claimed(path: Path) -> Iterator[int | None]:
    """An exclusive lock on a sealed file; None when another drain has it or it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield None
        return
    try:
        if not _try_lock(fd):
            yield None
            return
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        yield fd if same else None
    finally:
        os.close(fd)


def drain(
    directory: str | os.PathLike[str],
    settings: Settings | None = None,
    *,
    progress: bool = False,
    lock_timeout: float | None = None,
    vectorised: bool = True,
    stop: threading.Event | None = None,
) -> LoadReport:
    """Load every sealed segment (and recorded refusals) of a spool into the warehouse.

    Each segment goes through the loader (same parser, same rejections, same
    `messageId` de-duplication) and is deleted only after its last batch has
    committed; a failure leaves it for the next drain, which loads it again
    idempotently. Segments of dead processes are recovered first. Several
    drains may run at once: each segment is claimed with a lock.

    `lock_timeout` bounds the wait for a DuckDB file another process holds
    (default: TRACKHOUSE_LOCK_TIMEOUT); then `WarehouseBusyError` is raised and
    the remaining segments stay in the spool. `stop`, when set, ends the drain
    after the segment in progress (the rest stay for the next drain).
    """
    from .engine import ensure_schema, raw_connection
    from .engine import lock_timeout as lock_timeout_for
    from .fastpath import FastPath
    from .loader import (
        LoadReport,
        Progress,
        _chunks,
        default_batch_size,
        fast_parallel,
        parse_chunk,
    )
    from .privacy import suppress
    from .settings import load_settings
    from .writer import write_batch

    settings = settings or load_settings()
    directory = Path(directory)
    report = LoadReport()
    started = time.monotonic()
    if not directory.is_dir():
        raise TrackhouseError(
            f"no spool directory at {directory}; give the directory the application spools to "
            "(TRACKHOUSE_SPOOL_DIR; default data/spool/<target> in the project directory)"
        )
    recover(directory)
    names = sorted(e.name for e in _spool_files(directory) if e.name.endswith((SEALED, REJECTS)))
    total = sum((directory / n).stat().st_size for n in names if (directory / n).exists())
    bar = Progress(directory.name, total, progress)
    done_bytes = 0
    fast: FastPath | None = None
    try:
        with lock_timeout_for(lock_timeout):
            if names:
                # Is the warehouse there? Ask before parsing anything, so a drain
                # retried during an outage costs a connection attempt, not a parse.
                with raw_connection(settings):
                    pass
                ensure_schema(settings)
            for name in names:
                if stop is not None and stop.is_set():
                    break
                path = directory / name
                with _claimed(path) as fd:
                    if fd is None:
                        continue
                    size = os.fstat(fd).st_size
                    if name.endswith(REJECTS):
                        _drain_rejects(path, settings, report, write_batch)
                    else:
                        source = _source_of(name)
                        received_at = datetime.now(UTC).replace(tzinfo=None)
                        if fast is None and vectorised:
                            fast = FastPath(fast_parallel(settings))
                        with open(path, "rb") as stream:
                            for chunk in _chunks(stream, default_batch_size(settings)):
                                batch = parse_chunk(
                                    chunk,
                                    source=source,
                                    received_at=received_at,
                                    allowed_events=None,
                                    report=report,
                                    fast=fast,
                                )
                                suppress(batch, settings, report)  # forgotten ids (privacy.py)
                                result = write_batch(settings, batch)
                                report.accepted += result.new_events
                                report.duplicates += (
                                    result.duplicate_events + batch.duplicates_in_batch
                                )
                    report.files.append(str(path))
                    path.unlink()  # only now: every batch of it has committed
                    done_bytes += size
                    bar.update(done_bytes, report.received)
    finally:
        if fast is not None:
            fast.close()
        if names:
            bar.update(total, report.received, force=True)
    report.seconds = time.monotonic() - started
    return report


def _drain_rejects(path: Path, settings: Settings, report: LoadReport, write_batch: Any) -> None:
    from . import privacy
    from .loader import MAX_EXAMPLES, Rejection, rejected_id
    from .parsing import Batch

    batch = Batch()
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        record = orjson.loads(line)
        received_at = datetime.fromisoformat(record["receivedAt"])
        source, payload = str(record["source"]), str(record["payload"])
        batch.rejected.append(
            (
                rejected_id(source, None, payload),
                source,
                None,
                payload,
                str(record["reason"]),
                received_at,
            )
        )
    report.received += len(batch.rejected)
    report.rejected += len(batch.rejected)
    for row in batch.rejected[: max(0, MAX_EXAMPLES - len(report.rejections))]:
        report.rejections.append(Rejection(row[1], None, row[4]))
    privacy.pseudonymise(batch, settings)  # ids hashed at ingestion (privacy.py)
    write_batch(settings, batch)
