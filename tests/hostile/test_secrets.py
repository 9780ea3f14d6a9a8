"""What SECURITY.md promises about secrets and exposure, checked on a real server.

- both APIs bind 127.0.0.1 unless told otherwise;
- no secret reaches the log, even at debug level: not the request identity private key, not a
  deployment's additional headers (credentials), not the JWTs the server signs;
- the generated private key file is readable by its owner only.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess

from perdure.server.config import load
from perdure.server.identity import DEFAULT_KEY_FILE

pytestmark = pytest.mark.interop

SECRET = "Bearer s3cr3t-t0ken-do-not-log"


def test_both_apis_bind_the_loopback_address_by_default() -> None:
    config = load(env={})
    assert config.ingress_bind[0] == "127.0.0.1"
    assert config.admin_bind[0] == "127.0.0.1"


def test_no_secret_reaches_the_log(tmp_path: Path) -> None:
    service = ServiceProcess(
        "tests.services.crash_app", tmp_path / "service.log", env={"LEDGER": str(tmp_path / "l")}
    ).start()
    server = PerdureServer(
        tmp_path / "data", tmp_path / "server.log", env={"PERDURE_LOG_LEVEL": "debug"}
    ).start()
    try:
        headers = {"authorization": SECRET}
        server.register(service.uri, additional_headers=headers)
        r = httpx.post(
            f"{server.ingress}/Chain/run",
            json={"id": "s", "steps": 1, "pauseMillis": 1},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        # A registration that fails, with credentials, is reported without them.
        r = httpx.post(
            f"{server.admin}/deployments",
            json={"uri": "http://127.0.0.1:1", "additional_headers": headers},
            timeout=30,
        )
        assert r.status_code >= 400
        assert "s3cr3t" not in r.text
    finally:
        server.stop()
        service.stop()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "s3cr3t" not in log
    assert "PRIVATE KEY" not in log
    assert "x-restate-jwt-v1" not in log.lower() and "eyJ" not in log
    key_file = tmp_path / "data" / DEFAULT_KEY_FILE
    assert key_file.stat().st_mode & 0o077 == 0


def _listening_hosts(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    hosts.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:
                    hosts.add(address)
    return hosts


async def test_a_real_server_listens_on_the_loopback_address_only_by_default(
    tmp_path: Path,
) -> None:
    """The default hosts, served for real: only 127.0.0.1 listens (ports 0, not to collide)."""
    import asyncio
    from dataclasses import replace

    from perdure.server.app import PerdureServer as Server
    from perdure.server.config import Config

    default = Config()
    config = replace(
        load({"data_dir": str(tmp_path / "data")}, env={}),
        ingress_bind=(default.ingress_bind[0], 0),
        admin_bind=(default.admin_bind[0], 0),
    )
    server = Server(config)
    ready = asyncio.Event()
    run = asyncio.create_task(server.run(lambda _bound: ready.set()))
    await asyncio.wait_for(ready.wait(), 30)
    try:
        assert server.bound is not None
        for host, port in (server.bound.admin, server.bound.ingress):
            assert host == "127.0.0.1"
            assert _listening_hosts(port) == {"127.0.0.1"}
    finally:
        server.stop()
        await run
