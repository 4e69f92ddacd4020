"""A real, throw-away PostgreSQL server for the test suite.

initdb in a temporary directory, run as the `postgres` OS user when we are root
(the server refuses to run as root), on a free loopback port; trust auth.
If it cannot start, `start()` raises with the reason and the fix — the suite
fails rather than silently skipping PostgreSQL.
"""

from __future__ import annotations

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


class PostgresUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed; "
        "run `make system-deps` (apt-get install -y postgresql)"
    )


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
        cmd = list(args)
        kwargs: dict = {}
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            kwargs["user"] = entry.pw_uid
            kwargs["group"] = entry.pw_gid
            kwargs["extra_groups"] = []
        return subprocess.run(cmd, check=check, capture_output=True, text=True, **kwargs)

    def env(self, dbname: str, schema: str = "trackhouse") -> dict[str, str]:
        return {
            "TRACKHOUSE_TARGET": "postgres",
            "TRACKHOUSE_PG_HOST": self.host,
            "TRACKHOUSE_PG_PORT": str(self.port),
            "TRACKHOUSE_PG_USER": self.user,
            "TRACKHOUSE_PG_PASSWORD": "",
            "TRACKHOUSE_PG_DBNAME": dbname,
            "TRACKHOUSE_PG_SCHEMA": schema,
        }

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        return f"host={self.host} port={self.port} user={user or self.user} dbname={dbname}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')

    def stop(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-m",
            "immediate",
            "stop",
            check=False,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start() -> PostgresServer:
    bindir = _bindir()
    run_as = "postgres" if os.geteuid() == 0 else None
    if run_as:
        try:
            pwd.getpwnam(run_as)
        except KeyError:
            raise PostgresUnavailable(
                "running as root but there is no `postgres` OS user to run the server as; "
                "install the postgresql package (it creates one)"
            ) from None
    base = Path(tempfile.mkdtemp(prefix="trackhouse-pg-"))
    datadir = base / "data"
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(datadir=datadir, port=_free_port(), bindir=bindir, run_as=run_as)
    init = server._run(
        str(bindir / "initdb"),
        "-D",
        str(datadir),
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        check=False,
    )
    if init.returncode != 0:
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    options = (
        f"-p {server.port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    )
    started = server._run(
        str(bindir / "pg_ctl"),
        "-D",
        str(datadir),
        "-o",
        options,
        "-l",
        str(base / "log"),
        "-w",
        "-t",
        "60",
        "start",
        check=False,
    )
    if started.returncode != 0:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()}\n{log[-2000:]}")
    deadline = time.monotonic() + 30
    import psycopg

    while True:
        try:
            psycopg.connect(server.dsn(), connect_timeout=2).close()
            return server
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                server.stop()
                raise PostgresUnavailable(f"server did not accept connections: {exc}") from exc
            time.sleep(0.2)
