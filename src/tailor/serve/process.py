"""Start `tailor serve` in a subprocess on a free loopback port and wait until it answers /health
(for `tailor bench serve` and the replica tests; a real deployment runs the command itself)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``with ServerProcess(["--adapters", ...]) as server: httpx.get(server.url + "/health")``."""

    def __init__(self, args: list[str], host: str = "127.0.0.1", startup_timeout_s: float = 300.0):
        self.host, self.port = host, free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.args, self.startup_timeout_s = args, startup_timeout_s
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        if self.proc is None:
            self.start()
        return self.wait_ready()

    def start(self) -> ServerProcess:
        """Launch the process without waiting (start several, then wait for each)."""
        import tailor

        src = str(Path(tailor.__file__).resolve().parents[1])  # the same tailor as this process
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tailor.cli", "serve", *self.args, "--host", self.host, "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self) -> ServerProcess:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tailor serve exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.close()
        raise TimeoutError(f"tailor serve did not answer /health within {self.startup_timeout_s:.0f} s")

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
