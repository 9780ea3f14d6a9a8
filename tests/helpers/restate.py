"""The real Restate server (`@restatedev/restate-server` from npm) for interop tests.

`restate_binary()` installs the pinned version into the git-ignored `.cache/restate/` the
first time (with npm, install scripts off) and returns the binary; without npm it skips the
test with the reason (`PERDURE_TEST_RESTATE_SERVER=/path/to/restate-server` uses that binary
instead). `RestateServer` runs one server on 127.0.0.1 only: its own base dir in a temp
folder, free ports for ingress, admin and the node-to-node fabric, TCP listeners only (no unix
sockets), telemetry and the web UI off, and fast retries so failure scenarios end quickly.

Restate 1.7 also asks api.github.com for its latest release at start-up (unconditionally, in
`server/src/build_info.rs`); where outbound traffic is blocked that check fails silently and
changes nothing.

Example::

    server = RestateServer(tmp / "restate").start()
    server.register("http://127.0.0.1:9080")
    httpx.post(f"{server.ingress}/Greeter/greet", json="Ada")
    server.stop()
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.helpers.processes import ROOT, ProcessDied, free_port, wait_until

RESTATE_VERSION = "1.7.12"
PACKAGE = f"@restatedev/restate-server@{RESTATE_VERSION}"
CACHE_DIR = ROOT / ".cache" / "restate"
BINARY = CACHE_DIR / "node_modules" / "@restatedev" / "restate-server-linux-x64" / "bin"
BINARY = BINARY / "restate-server"
# restate-server checks api.github.com for a newer version at start and has no switch for it.
# Our tests and benchmarks talk to 127.0.0.1 only: every outgoing HTTP(S) request of the binary
# goes to a proxy address on loopback where nothing listens, so the check fails at once.
LOOPBACK_ONLY_ENV = {
    "DO_NOT_TRACK": "1",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "all_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost,::1",
    "no_proxy": "127.0.0.1,localhost,::1",
}
BINARY_ENV = "PERDURE_TEST_RESTATE_SERVER"
# Installing downloads ~70 MB once; later runs find the binary in the cache.
INSTALL_TIMEOUT_SECONDS = 300


def _installed_version() -> str | None:
    if not BINARY.is_file():
        return None
    try:
        out = subprocess.run(
            [str(BINARY), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    return out.stdout.strip().rsplit(" ", 1)[-1] if out.returncode == 0 else None


def restate_binary() -> Path:
    """The restate-server binary, installed on first use; skips the test if that cannot be.

    ``PERDURE_TEST_RESTATE_SERVER`` names a binary to use instead (a machine without npm or
    without access to its registry).
    """
    chosen = os.environ.get(BINARY_ENV)
    if chosen:
        path = Path(chosen)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"{BINARY_ENV}={chosen} is not an executable file")
        return path
    if _installed_version() == RESTATE_VERSION:
        return BINARY
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed, so {PACKAGE} cannot be installed for this test")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Several test runs (or engineers) may install at once: one at a time.
    with open(CACHE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() != RESTATE_VERSION:
            result = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(CACHE_DIR),
                    "--no-save",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    PACKAGE,
                ],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
            if result.returncode != 0 or _installed_version() != RESTATE_VERSION:
                pytest.skip(
                    f"`npm install {PACKAGE}` failed (exit {result.returncode}): "
                    f"{(result.stderr or result.stdout)[-600:]}"
                )
    return BINARY


def _config_toml(
    base_dir: Path,
    node_port: int,
    ingress_port: int,
    admin_port: int,
    identity_key_pem: Path | None,
) -> str:
    key_line = f'request-identity-private-key-pem-file = "{identity_key_pem}"\n'
    identity = key_line if identity_key_pem else ""
    return f"""\
node-name = "perdure-interop"
base-dir = "{base_dir}"
bind-address = "127.0.0.1:{node_port}"
advertised-address = "http://127.0.0.1:{node_port}/"
default-num-partitions = 2
disable-telemetry = true
rocksdb-total-memory-size = "256 MiB"
log-filter = "warn,restate=info"
log-disable-ansi-codes = true

[default-retry-policy]
initial-interval = "50ms"
exponentiation-factor = 2.0
max-interval = "500ms"
max-attempts = 200
on-max-attempts = "pause"

[worker.invoker]
inactivity-timeout = "10s"
{identity}
[admin]
bind-address = "127.0.0.1:{admin_port}"
disable-web-ui = true

[ingress]
bind-address = "127.0.0.1:{ingress_port}"
"""


@dataclass
class RestateServer:
    """One restate-server process, all of whose files live under ``work_dir``."""

    work_dir: Path
    identity_key_pem: Path | None = None
    ingress_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    node_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "restate.log"

    def start(self) -> RestateServer:
        binary = restate_binary()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "restate.toml"
        config.write_text(
            _config_toml(
                self.work_dir / "base",
                self.node_port,
                self.ingress_port,
                self.admin_port,
                self.identity_key_pem,
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
        env.update(LOOPBACK_ONLY_ENV)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(binary), "--config-file", str(config), "--no-logo", "--listen-mode", "tcp"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                env=env,
            )
        wait_until(self._healthy, timeout=60, what=f"restate-server health (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ProcessDied(f"restate-server exited with {self.proc.returncode}: {self.log()}")
        admin = httpx.get(f"{self.admin}/health", timeout=1)
        ingress = httpx.get(f"{self.ingress}/restate/health", timeout=1)
        return admin.status_code == 200 and ingress.status_code == 200

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def register(self, uri: str, *, use_http_11: bool = False) -> dict[str, object]:
        """Register (or re-register) the deployment at ``uri``; returns the admin's answer."""
        body = {"uri": uri, "force": True, "use_http_11": use_http_11}
        answer = httpx.post(f"{self.admin}/deployments", json=body, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        return dict(answer.json())

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
