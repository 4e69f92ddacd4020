"""A real, throw-away PostgreSQL server for the test suite and the benchmarks.

initdb in a temporary directory, run as the `postgres` OS user when we are root
(the server refuses to run as root), on a free loopback port; trust auth, so a
test can connect as any role without a password. When the server binaries are
missing and we are root on a Debian-like system, `start()` installs them first
(`apt-get install postgresql`). If the server cannot start, `start()` raises
`PostgresUnavailable` with the reason and the fix: the suite fails rather than
silently skipping PostgreSQL.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Settings for a server that only lives as long as a test session: durability
# off (a crash loses nothing we need), enough connections for parallel loaders.
FAST_OPTIONS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
COMMON_OPTIONS = ("max_connections=200",)
START_ATTEMPTS = 4


class PostgresUnavailable(RuntimeError):
    pass


def _find_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _install() -> str:
    """apt-get install postgresql, once per machine even with parallel test workers.

    Returns what went wrong ('' when it worked)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "not root or no apt-get, so not installing it automatically"
    with open(Path(tempfile.gettempdir()) / "trackhouse-pg-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be installing right now
        if _find_bindir():
            return ""
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
        ):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                return f"`{' '.join(cmd)}` failed: {(done.stderr or done.stdout).strip()[-800:]}"
    return ""


def _bindir() -> Path:
    found = _find_bindir()
    if found:
        return found
    problem = _install()
    found = _find_bindir()
    if found:
        return found
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed "
        f"({problem or 'apt-get install postgresql did not provide them'}); "
        "run `make system-deps` as root, or `sudo apt-get install -y postgresql`"
    )


OWNER_FILE = "owner.pid"  # the process whose session the server belongs to


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_orphans(bindir: Path, run_as: str | None) -> None:
    """Stop servers of earlier sessions that died without stopping them (a killed
    pytest): each server's directory names its owner process; only those whose
    owner is gone are stopped."""
    for owner_file in Path(tempfile.gettempdir()).glob(f"trackhouse-pg-*/{OWNER_FILE}"):
        try:
            owner = int(owner_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or _alive(owner):
            continue
        base = owner_file.parent
        PostgresServer(datadir=base / "data", port=0, bindir=bindir, run_as=run_as).stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    datadir: Path
    port: int
    bindir: Path
    run_as: str | None
    user: str = "postgres"
    host: str = "127.0.0.1"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            kwargs["user"] = entry.pw_uid
            kwargs["group"] = entry.pw_gid
            kwargs["extra_groups"] = []
        return subprocess.run(list(args), check=check, capture_output=True, text=True, **kwargs)

    @property
    def log_path(self) -> Path:
        return self.datadir.parent / "log"

    def env(
        self, dbname: str, schema: str = "trackhouse", user: str | None = None
    ) -> dict[str, str]:
        """The TRACKHOUSE_* variables that point the profile's postgres target here."""
        return {
            "TRACKHOUSE_TARGET": "postgres",
            "TRACKHOUSE_PG_HOST": self.host,
            "TRACKHOUSE_PG_PORT": str(self.port),
            "TRACKHOUSE_PG_USER": user or self.user,
            "TRACKHOUSE_PG_PASSWORD": "",
            "TRACKHOUSE_PG_DBNAME": dbname,
            "TRACKHOUSE_PG_SCHEMA": schema,
        }

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        return f"host={self.host} port={self.port} user={user or self.user} dbname={dbname}"

    def connect(self, dbname: str = "postgres", user: str | None = None, **kwargs: Any) -> Any:
        """A psycopg connection (autocommit unless told otherwise)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn(dbname, user), **kwargs)

    def psql(self, dbname: str, *args: str, user: str | None = None) -> list[str]:
        """A psql command line for this server (for \\copy and friends)."""
        psql = self.bindir / "psql"
        return [
            str(psql if psql.exists() else "psql"),
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            user or self.user,
            "-d",
            dbname,
            *args,
        ]

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def stop(self) -> None:
        if self.datadir.exists():
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop",
                check=False,
            )  # fmt: skip
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start(durable: bool = False) -> PostgresServer:
    """Start a fresh server; `durable=True` keeps fsync on (for benchmarks)."""
    bindir = _bindir()
    run_as = "postgres" if os.geteuid() == 0 else None
    if run_as:
        try:
            entry = pwd.getpwnam(run_as)
        except KeyError:
            raise PostgresUnavailable(
                "running as root but there is no `postgres` OS user to run the server as; "
                "install the postgresql package (it creates one): apt-get install -y postgresql"
            ) from None
    _reap_orphans(bindir, run_as)
    base = Path(tempfile.mkdtemp(prefix="trackhouse-pg-"))
    (base / OWNER_FILE).write_text(str(os.getpid()))
    if run_as:
        os.chown(base, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(datadir=base / "data", port=0, bindir=bindir, run_as=run_as)
    init = server._run(
        str(bindir / "initdb"), "-D", str(server.datadir), "-U", "postgres", "-A", "trust",
        "-E", "UTF8", "--no-locale",
        check=False,
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    settings = (*COMMON_OPTIONS, *(() if durable else FAST_OPTIONS))
    problem = ""
    # The port is free when we pick it, but another process (a parallel test
    # worker) may take it before the server binds: then try another one.
    for _ in range(START_ATTEMPTS):
        server.port = _free_port()
        options = " ".join(
            [f"-p {server.port}", "-c listen_addresses=127.0.0.1", f"-k {base}"]
            + [f"-c {s}" for s in settings]
        )
        started = server._run(
            str(bindir / "pg_ctl"), "-D", str(server.datadir), "-o", options,
            "-l", str(server.log_path), "-w", "-t", "60", "start",
            check=False,
        )  # fmt: skip
        if started.returncode == 0:
            break
        log = server.log_path.read_text() if server.log_path.exists() else ""
        problem = f"pg_ctl start failed: {started.stderr.strip()}\n{log[-2000:]}"
        if "already in use" not in log and "could not bind" not in log:
            break
    else:
        started = None
    if started is None or started.returncode != 0:
        server.stop()
        raise PostgresUnavailable(problem)
    atexit.register(server.stop)  # also when the session ends abnormally
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with contextlib.closing(psycopg.connect(server.dsn(), connect_timeout=2)):
                return server
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                server.stop()
                raise PostgresUnavailable(f"server did not accept connections: {exc}") from exc
            time.sleep(0.2)
