"""A real `gemini-flow serve` process on 127.0.0.1 and a free port, for the HTTP tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("gemini-flow")
GEMINI_FLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gemini_flow_cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(db: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*GEMINI_FLOW, "--db", str(db), "--json", *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=60)
    if check:
        assert result.returncode == 0, result
    return result


def create_key(db: Path, name: str, *options: str) -> str:
    return json.loads(cli(db, "apikey", "create", name, *options).stdout)["token"]


class ServerProcess:
    """``with ServerProcess(db) as server: server.url``: started, waited for, stopped with SIGTERM."""

    def __init__(self, db: Path, *extra: str, host: str = "127.0.0.1", scheme: str = "http", env: dict | None = None,
                 verify=None, cwd: Path | None = None):
        self.db, self.extra, self.host, self.scheme = db, extra, host, scheme
        # The server's working folder, where the hooks it runs run: the database's folder unless
        # told, never the checkout the tests run from.
        self.cwd = cwd or db.parent
        self.port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.verify = verify
        self.process: subprocess.Popen | None = None
        self.stderr_path = db.parent / f"serve-{self.port}.err"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        import httpx

        self.db.parent.mkdir(parents=True, exist_ok=True)
        self._stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen(
            [*GEMINI_FLOW, "--db", str(self.db), "serve", "--host", self.host, "--port", str(self.port), *self.extra],
            stdout=subprocess.DEVNULL, stderr=self._stderr, env=self.env, cwd=self.cwd,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited {self.process.returncode}: {self.stderr}")
            try:
                httpx.get(f"{self.url}/api/v1/health", timeout=1, verify=self.verify if self.verify is not None else True)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"serve did not answer within {timeout}s: {self.stderr}")

    @property
    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def stop(self, timeout: float = 30) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._stderr.close()
