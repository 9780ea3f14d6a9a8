"""Real processes for integration tests: a `perdure server` and service deployments.

Every process is started by the test and ended by its PID; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessDied(RuntimeError):
    """A process a test waits for has exited: waiting longer cannot help, so `wait_until` stops."""


def wait_until(check, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except ProcessDied:
            raise
        except Exception as exc:  # polling: any failure means "not yet"
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _stop(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10
) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@dataclass
class PerdureServer:
    data_dir: Path
    log_path: Path
    ingress_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> PerdureServer:
        cmd = [
            sys.executable,
            "-m",
            "perdure.cli.main",
            "server",
            "--ingress-bind",
            f"127.0.0.1:{self.ingress_port}",
            "--admin-bind",
            f"127.0.0.1:{self.admin_port}",
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **self.env}
        )
        log.close()
        wait_until(self._healthy, what=f"perdure server health (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ProcessDied(f"perdure server exited with {self.proc.returncode}: {self.log()}")
        a = httpx.get(f"{self.admin}/health", timeout=1)
        i = httpx.get(f"{self.ingress}/restate/health", timeout=1)
        return a.status_code == 200 and i.status_code == 200

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill9(self) -> None:
        _stop(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        _stop(self.proc)

    def restart(self) -> PerdureServer:
        self.stop()
        return self.start()

    def register(self, uri: str, **extra: object) -> dict[str, object]:
        r = httpx.post(f"{self.admin}/deployments", json={"uri": uri, **extra}, timeout=30)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())


@dataclass
class ServiceProcess:
    module: str
    log_path: Path
    port: int = field(default_factory=free_port)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        cmd = [sys.executable, "-m", self.module, "--port", str(self.port), *self.args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **self.env}
        )
        log.close()
        wait_until(self._listening, what=f"{self.module} listening on {self.port}")
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ProcessDied(f"{self.module} exited: {self.log_path.read_text(errors='replace')}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True

    def kill9(self) -> None:
        _stop(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        # The official SDK traps SIGTERM without exiting; SIGINT stops it.
        _stop(self.proc, signal.SIGINT)


def start_dev(
    data_dir: Path, log: Path, ingress: int, admin: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`perdure dev examples/greeter.py` on the given ports, its output in `log`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perdure.cli.main",
            "dev",
            str(ROOT / "examples" / "greeter.py"),
            "--data-dir",
            str(data_dir),
            "--ingress-bind",
            f"127.0.0.1:{ingress}",
            "--admin-bind",
            f"127.0.0.1:{admin}",
            "--service-port",
            str(free_port()),
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop_dev(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
