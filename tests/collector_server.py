"""A real collector process for the tests: `python -m trackhouse.collector serve` on a free
loopback port (uvicorn), its log in a file, stopped (or SIGKILLed) by the test."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from filelock import FileLock

from trackhouse.collector import hash_write_key

ROOT = Path(__file__).resolve().parents[1]
SDK_DIR = ROOT / "tests" / "sdk"
WRITE_KEY = "test-write-key-web"
OTHER_KEY = "test-write-key-backend"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@dataclass
class Collector:
    spool_dir: Path
    log: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Collector:
        self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "trackhouse.collector",
            "serve",
            "--port",
            str(self.port),
            "--spool-dir",
            str(self.spool_dir),
            "--write-key",
            f"web={hash_write_key(WRITE_KEY)}",
            "--write-key",
            f"backend={hash_write_key(OTHER_KEY)}",
            *self.args,
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise AssertionError(f"the collector exited {code}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"the collector did not answer /healthz in {timeout}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM: uvicorn finishes in-flight requests, the spool is sealed."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_collector(tmp: Path, *args: str, spool_dir: Path | None = None) -> Collector:
    return Collector(
        spool_dir=spool_dir or tmp / "spool", log=tmp / "collector.log", args=list(args)
    ).start()


def npm_install() -> None:
    """`npm ci` into tests/sdk/node_modules once (cached there; gitignored)."""
    with FileLock(str(SDK_DIR / ".npm-install.lock"), timeout=600):
        marker = SDK_DIR / "node_modules" / ".package-lock.json"
        lock = SDK_DIR / "package-lock.json"
        if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
            return
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=SDK_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}\n{proc.stderr}"
