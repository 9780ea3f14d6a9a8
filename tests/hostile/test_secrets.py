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
