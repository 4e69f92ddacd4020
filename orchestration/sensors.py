"""The landing sensor: every new NDJSON file in the landing folder is loaded once.

A file is identified by (path, size, mtime): that triple is the run key of its
load, so Dagster never launches the same file twice, and the sensor's cursor
remembers the files it has launched, so a restart (the cursor lives in the
Dagster instance) does not either. A file that changes (appended to, replaced)
gets a new identity and is loaded again; the ledger keeps lines already loaded
from counting twice. Files still being written are left alone until they have
not changed for `settle_seconds`; writers should still write under a temporary
name (`.name`, `*.tmp`, `*.part`) and rename when done.

The same sensor drains the spool (the collector's and the Python API's events,
`trackhouse.spool`): when the target's spool directory holds sealed segments or
recorded refusals, it launches one load run with `spool_dir` set, keyed by the
names of those files (a segment is deleted once loaded, so the same set is never
launched twice, and the drain itself claims each file with a lock).
"""

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from .environment import Environment
from .ingestion import FileOutcome, LoadFilesConfig
from .resources import LandingFolder

SENSOR_NAME = "landing_sensor"
LOAD_JOB_NAME = "load_landing_file"
FILE_TAG = "trackhouse/file"
SPOOL_TAG = "trackhouse/spool"
SUFFIXES = (".ndjson", ".jsonl", ".json")
TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")


@dataclass(frozen=True, order=True)
class LandedFile:
    mtime_ns: int
    path: str
    size: int

    @property
    def run_key(self) -> str:
        return f"{self.path}|{self.size}|{self.mtime_ns}"


def is_landing_file(name: str) -> bool:
    """NDJSON (optionally gzipped), not hidden and not a temporary name."""
    lowered = name.lower()
    if lowered.startswith((".", "_", "~")) or lowered.endswith(TEMPORARY_SUFFIXES):
        return False
    if lowered.endswith(".gz"):
        lowered = lowered[:-3]
    return lowered.endswith(SUFFIXES)


def scan_landing(directory: Path) -> list[LandedFile]:
    """The landing files under `directory` (recursively), oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if any(part.startswith((".", "_")) for part in relative.parts[:-1]):
            continue  # hidden or scratch folders
        if not is_landing_file(path.name):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            found.append(LandedFile(stat.st_mtime_ns, str(path.resolve()), stat.st_size))
    return sorted(found)


def files_to_load(
    files: Sequence[LandedFile], cursor: Mapping[str, str], now_ns: int, settle_seconds: float
) -> list[LandedFile]:
    """The files not launched yet (by identity) that have been still for settle_seconds."""
    settled_before = now_ns - int(settle_seconds * 1e9)
    return [f for f in files if cursor.get(f.path) != f.run_key and f.mtime_ns <= settled_before]


def parse_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    files = value.get("files") if isinstance(value, dict) else None
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def next_cursor(
    files: Sequence[LandedFile], cursor: Mapping[str, str], launched: Sequence[LandedFile]
) -> str:
    """The launched files plus what was remembered for files still in the folder
    (files that are gone are forgotten, so the cursor does not grow forever)."""
    present = {f.path for f in files}
    kept = {path: key for path, key in cursor.items() if path in present}
    kept |= {f.path: f.run_key for f in launched}
    return json.dumps({"files": dict(sorted(kept.items()))}, sort_keys=True)


def spool_waiting(directory: Path) -> list[str]:
    """The spool files a drain would load now (sealed segments, recorded refusals),
    after sealing the segments of writers that died."""
    from trackhouse.spool import REJECTS, SEALED, recover

    if not directory.is_dir():
        return []
    recover(directory)
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((SEALED, REJECTS)))


def spool_run_request(directory: Path, names: Sequence[str]) -> dg.RunRequest:
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"spool|{directory}|{digest}",
        run_config=dg.RunConfig(ops={"raw_files": LoadFilesConfig(spool_dir=str(directory))}),
        tags={SPOOL_TAG: str(directory)},
    )


def drain_spool(directory: Path, warehouse: Any, log: Any) -> FileOutcome:
    """Drain a spool directory into the warehouse, reported like one loaded file."""
    from trackhouse.errors import TrackhouseError
    from trackhouse.spool import drain

    outcome = FileOutcome(str(directory))
    try:
        outcome.report = drain(directory, warehouse.settings())
    except TrackhouseError as exc:
        outcome.error = str(exc)
        log.error(f"spool {directory}: {exc}")
    else:
        log.info(f"spool {directory}: {outcome.report.summary()}")
        for r in outcome.report.rejections:
            log.warning(f"spool {r.source} line {r.line_number}: {r.reason}")
    return outcome


def build_landing_sensor(environment: Environment, job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=environment.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Loads every new NDJSON file (.ndjson, .jsonl, .json, optionally .gz) dropped "
            f"in {environment.landing_dir}, once: one run per file, keyed by its path, size "
            "and modification time; and drains the spool "
            f"{environment.settings.spool_dir} when it has sealed segments."
        ),
    )
    def landing_sensor(
        context: dg.SensorEvaluationContext, landing: LandingFolder
    ) -> dg.SensorResult:
        files = scan_landing(landing.directory)
        cursor = parse_cursor(context.cursor)
        ready = files_to_load(files, cursor, time.time_ns(), landing.settle_seconds)
        new_cursor = next_cursor(files, cursor, ready)
        spool_dir = environment.settings.spool_dir
        spooled = spool_waiting(spool_dir)
        if not ready and not spooled:
            return dg.SensorResult(
                skip_reason=f"no new files in {landing.directory} and nothing in the spool",
                cursor=new_cursor,
            )
        spool_requests = [spool_run_request(spool_dir, spooled)] if spooled else []
        return dg.SensorResult(
            run_requests=spool_requests
            + [
                dg.RunRequest(
                    run_key=f.run_key,
                    run_config=dg.RunConfig(ops={"raw_files": LoadFilesConfig(paths=[f.path])}),
                    tags={FILE_TAG: f.path},
                )
                for f in ready
            ],
            cursor=new_cursor,
        )

    return landing_sensor
