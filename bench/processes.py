"""The processes a benchmark run starts, installs and measures: all on 127.0.0.1, all by PID.

`ensure_tools()` installs what is missing (the pinned restate-server from npm into the
git-ignored `.cache/bench/`, `wrk` with apt-get, `py-spy` with pip). `Perdure`, `Restate` and
`Service` start one process each; `cpu_seconds(pid)` reads user+system time from /proc.

Example::

    tools = ensure_tools()
    server = Perdure(work / "perdure").start()
    service = Service("bench.services", work / "service.log").start()
    server.register(service.uri)
    print(cpu_seconds(server.pid))
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
RESTATE_VERSION = "1.7.12"
RESTATE_PACKAGE = f"@restatedev/restate-server@{RESTATE_VERSION}"
RESTATE_BINARY = CACHE / "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
# restate-server asks a public host for its latest version at start; the benchmark talks to
# loopback only, so every outgoing request of the binary goes to a dead loopback proxy.
LOOPBACK_ONLY = {
    "DO_NOT_TRACK": "1",
    **{k: "http://127.0.0.1:9" for k in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")},
    **{k: "http://127.0.0.1:9" for k in ("https_proxy", "http_proxy", "all_proxy")},
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """Something the benchmark needs is missing or did not start."""


@dataclass(frozen=True)
class Tools:
    restate_server: Path
    wrk: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far.

    >>> cpu_seconds(os.getpid()) >= 0
    True
    """
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After "(comm)": state is field 3, utime field 14 and stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine spent so far (every core, not idle or iowait).

    >>> machine_busy_seconds() > 0
    True
    """
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy.
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS


def _restate_version() -> str | None:
    if not RESTATE_BINARY.is_file():
        return None
    out = subprocess.run(
        [str(RESTATE_BINARY), "--version"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip().rsplit(" ", 1)[-1] if out.returncode == 0 else None


def ensure_tools(*, profiler: bool = False) -> Tools:
    """Install what the run needs and is missing; raise BenchError with the reason otherwise."""
    if _restate_version() != RESTATE_VERSION:
        npm = shutil.which("npm")
        if npm is None:
            raise BenchError(f"npm is needed to install {RESTATE_PACKAGE}")
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"installing {RESTATE_PACKAGE} into {CACHE} ...", flush=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(CACHE),
                "--no-save",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                RESTATE_PACKAGE,
            ],
            check=True,
            timeout=600,
        )
        if _restate_version() != RESTATE_VERSION:
            raise BenchError(f"{RESTATE_BINARY} is not version {RESTATE_VERSION}")
    wrk = shutil.which("wrk")
    if wrk is None:
        print("installing wrk with apt-get ...", flush=True)
        apt = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(apt, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=False)
            subprocess.run(apt, check=True)
        wrk = shutil.which("wrk")
        if wrk is None:
            raise BenchError("wrk could not be installed")
    if profiler and shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None:
        print("installing py-spy with pip ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return Tools(RESTATE_BINARY, Path(wrk))


def _wait(check: object, what: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what}: the process exited with {proc.returncode}")
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise BenchError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class _Server:
    work_dir: Path
    ingress_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _healthy(self) -> bool:
        admin = httpx.get(f"{self.admin}/health", timeout=1)
        ingress = httpx.get(f"{self.ingress}/restate/health", timeout=1)
        return admin.status_code == 200 and ingress.status_code == 200

    def _launch(self, cmd: list[str], env: dict[str, str], what: str) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.work_dir / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.work_dir, env=env
            )
        _wait(self._healthy, f"{what} health (log: {self.work_dir / 'server.log'})", self.proc)

    def register(self, uri: str) -> None:
        body = {"uri": uri, "force": True}
        answer = httpx.post(f"{self.admin}/deployments", json=body, timeout=60)
        if answer.status_code not in (200, 201):
            raise BenchError(f"registering {uri}: {answer.status_code} {answer.text}")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)


@dataclass
class Perdure(_Server):
    """`perdure server` with its defaults, data in ``work_dir/data``.

    ``src`` is the source tree it runs from: another one (say an older commit's, from
    ``git archive <commit> src | tar -x -C /tmp/old``) measures a before/after pair; ``extra``
    are more flags for `perdure server`.
    """

    src: Path = ROOT / "src"
    extra: list[str] = field(default_factory=list)

    def start(self) -> Perdure:
        cmd = [
            sys.executable, "-m", "perdure.cli.main", "server",
            "--ingress-bind", f"127.0.0.1:{self.ingress_port}",
            "--admin-bind", f"127.0.0.1:{self.admin_port}",
            "--data-dir", str(self.work_dir / "data"),
            "--log-level", "warning",
            *self.extra,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
        env["PYTHONPATH"] = str(self.src)
        self._launch(cmd, env, "perdure server")
        return self


@dataclass
class Restate(_Server):
    """restate-server with its defaults, except: loopback ports, its own base dir, quiet logs."""

    binary: Path = RESTATE_BINARY
    node_port: int = field(default_factory=free_port)

    def start(self) -> Restate:
        config = self.work_dir / "restate.toml"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f'node-name = "bench"\n'
            f'base-dir = "{self.work_dir / "base"}"\n'
            f'bind-address = "127.0.0.1:{self.node_port}"\n'
            f'advertised-address = "http://127.0.0.1:{self.node_port}/"\n'
            "disable-telemetry = true\n"
            'log-filter = "warn"\n'
            "log-disable-ansi-codes = true\n"
            f'[admin]\nbind-address = "127.0.0.1:{self.admin_port}"\ndisable-web-ui = true\n'
            f'[ingress]\nbind-address = "127.0.0.1:{self.ingress_port}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
        env.update(LOOPBACK_ONLY)
        cmd = [str(self.binary), "--config-file", str(config), "--no-logo", "--listen-mode", "tcp"]
        self._launch(cmd, env, "restate-server")
        return self


@dataclass
class Service:
    """A service deployment: `python -m <module> --port N` (stopped with SIGINT, then killed)."""

    module: str
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Service:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
            )

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True

        _wait(listening, f"{self.module} on port {self.port} (log: {self.log_path})", self.proc)
        return self

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)
