"""dbt commands run inside the test process (dbt's documented `dbtRunner`).

A `dbt` subprocess costs about 3 s before it does anything (importing dbt and the
adapters, reading the partial parse); in the process that already imported them a
command starts in a few tenths of a second. The suite runs a few hundred dbt commands,
so this is most of what a test pays for dbt.

What a test sees stays what a subprocess would give it: the command's environment
(the warehouse's variables) is set for the call and restored after it, its log lines
are captured as `stdout`, and the exit code follows dbt's (0 ok, 1 failed nodes,
2 an error before or outside the nodes). After every command the adapters are reset
and the DuckDB file is closed, so the next thing the test does (or a process it
starts) can open the warehouse. Commands that must be another process (concurrency
and crash tests, Spark, the CLI) still start one.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import subprocess
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _release_adapters() -> None:
    """Close what dbt keeps between invocations: connections of every adapter, and
    dbt-duckdb's shared DuckDB instance (which holds the file's lock)."""
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    with contextlib.suppress(ImportError):
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        with DuckDBConnectionManager._LOCK:
            env = DuckDBConnectionManager._ENV
            DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()
    gc.collect()  # an environment only reachable from a cycle closes its file here


def run(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`dbt <args>` in this process, as a CompletedProcess like `subprocess.run` gives."""
    from dbt.cli.main import dbtRunner

    out = io.StringIO()
    with _environ(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            result = dbtRunner().invoke(list(args))
        finally:
            _release_adapters()
    if result.success:
        code = 0
    elif result.exception is None:
        code = 1  # nodes failed or errored: what `dbt` exits with
    else:
        code = 2
        out.write(f"\n{type(result.exception).__name__}: {result.exception}\n")
    return subprocess.CompletedProcess(["dbt", *args], code, out.getvalue(), "")
