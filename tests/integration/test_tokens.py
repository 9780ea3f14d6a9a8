"""Bearer tokens on the ingress and the admin API, on a real `perdure server` and real sockets.

The server gets its ingress token from PERDURE_INGRESS_TOKEN and its admin token from a file
(--admin-token-file), logs at debug level, and serves services written with the official
restate-sdk. Checked: a request without the right token is a 401 that says what to send (with
WWW-Authenticate: Bearer), a token sent to the wrong port is named as such, health stays open,
the right tokens work from curl-like requests, the CLI and the Python client, calls between
services need no token, and no token ever reaches the log or an answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.helpers.processes import ROOT, PerdureServer, ServiceProcess

from perdure.client import Client, IngressError
from perdure.server.config import ConfigError, load

pytestmark = pytest.mark.interop

INGRESS_TOKEN = "ingress-t0ken-Zq8vW3nX5pL2"
ADMIN_TOKEN = "admin-t0ken-Hk4rT7yU1mC9"


@dataclass
class Setup:
    server: PerdureServer
    service: ServiceProcess
    log: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("tokens")
    token_file = tmp / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    token_file.chmod(0o600)
    service = ServiceProcess(
        "tests.services.crash_app", tmp / "service.log", env={"LEDGER": str(tmp / "ledger")}
    ).start()
    log = tmp / "server.log"
    server = PerdureServer(
        tmp / "data",
        log,
        extra_args=["--admin-token-file", str(token_file), "--log-level", "debug"],
        env={"PERDURE_INGRESS_TOKEN": INGRESS_TOKEN},
    ).start()
    answer = httpx.post(
        f"{server.admin}/deployments",
        json={"uri": service.uri},
        headers=_bearer(ADMIN_TOKEN),
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    yield Setup(server, service, log)
    server.stop()
    service.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _chain(setup: Setup, headers: dict[str, str], name: str = "t") -> httpx.Response:
    return httpx.post(
        f"{setup.server.ingress}/Chain/run",
        json={"id": name, "steps": 1, "pauseMillis": 1},
        headers=headers,
        timeout=30,
    )


def _invocations(setup: Setup) -> list[dict[str, object]]:
    answer = httpx.get(
        f"{setup.server.admin}/invocations", headers=_bearer(ADMIN_TOKEN), timeout=30
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["invocations"])


def test_an_ingress_request_without_the_token_is_a_401_that_says_what_to_send(
    setup: Setup,
) -> None:
    before = len(_invocations(setup))
    answer = _chain(setup, {})
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    body = answer.json()
    assert body["source"] == "ingress" and body["perdure_code"] == "PD-9007"
    assert "Authorization: Bearer" in body["message"]
    assert "--ingress-token" in body["message"]
    assert len(_invocations(setup)) == before, "a refused request stores nothing"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong-token-000000000000",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Bearer",
        "Token wrong-token-0000",
    ],
)
def test_a_wrong_token_or_scheme_is_refused(setup: Setup, header: str) -> None:
    answer = _chain(setup, {"authorization": header})
    assert answer.status_code == 401, answer.text
    assert "error=" in answer.headers["www-authenticate"]
    assert "wrong-token" not in answer.text


def test_the_admin_token_sent_to_the_ingress_is_named(setup: Setup) -> None:
    answer = _chain(setup, _bearer(ADMIN_TOKEN))
    assert answer.status_code == 401
    assert "this is the ingress port" in answer.text.lower()
    assert "admin token" in answer.text
    assert ADMIN_TOKEN not in answer.text and INGRESS_TOKEN not in answer.text


def test_the_ingress_token_sent_to_the_admin_api_is_named(setup: Setup) -> None:
    answer = httpx.get(f"{setup.server.admin}/services", headers=_bearer(INGRESS_TOKEN), timeout=30)
    assert answer.status_code == 401
    assert "this is the admin api port" in answer.text.lower()
    assert "ingress token" in answer.text
    assert answer.json()["perdure_code"] == "PD-9007"


@pytest.mark.parametrize(
    "path", ["/services", "/deployments", "/invocations", "/version", "/v3/services", "/nope"]
)
def test_every_admin_path_needs_the_token(setup: Setup, path: str) -> None:
    answer = httpx.get(setup.server.admin + path, timeout=30)
    assert answer.status_code == 401, (path, answer.text)
    assert "--admin-token" in answer.text and "RESTATE_AUTH_TOKEN" in answer.text


def test_health_stays_open(setup: Setup) -> None:
    assert httpx.get(f"{setup.server.ingress}/restate/health", timeout=10).status_code == 200
    assert httpx.get(f"{setup.server.admin}/health", timeout=10).status_code == 200
    assert httpx.get(f"{setup.server.admin}/v3/health", timeout=10).status_code == 200


def test_the_right_tokens_work_and_calls_between_services_need_none(setup: Setup) -> None:
    answer = _chain(setup, _bearer(INGRESS_TOKEN), "ok")
    assert answer.status_code == 200, answer.text
    # Caller calls Tally through the server: an internal call, no ingress request, no token.
    answer = httpx.post(
        f"{setup.server.ingress}/Caller/run",
        json={"id": "c1", "key": "k", "delta": 2},
        headers=_bearer(INGRESS_TOKEN),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_the_python_client_sends_each_token_to_its_own_port(setup: Setup) -> None:
    server = setup.server
    with Client(
        server.ingress, admin_url=server.admin, token=INGRESS_TOKEN, admin_token=ADMIN_TOKEN
    ) as client:
        assert client.call("Tally", "get", key="k") == 2
        receipt = client.send("Chain", "run", {"id": "s", "steps": 1, "pauseMillis": 1})
        assert client.attach(receipt.invocation_id) is not None
    with (
        Client(server.ingress, admin_url=server.admin) as client,
        pytest.raises(IngressError) as refused,
    ):
        client.call("Tally", "get", key="k")
    assert refused.value.status == 401


def _cli(setup: Setup, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "perdure.cli.main",
            *args,
            "--admin-url",
            setup.server.admin,
            "--ingress-url",
            setup.server.ingress,
        ],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_reads_its_tokens_from_the_servers_variables(setup: Setup, tmp_path: Path) -> None:
    listed = _cli(setup, "services", "list", env={"PERDURE_ADMIN_TOKEN": ADMIN_TOKEN})
    assert listed.returncode == 0, listed.stderr
    assert "Chain" in listed.stdout
    token_file = tmp_path / "t"
    token_file.write_text(INGRESS_TOKEN)
    called = _cli(
        setup,
        "invoke",
        "Tally/k/get",
        env={"PERDURE_INGRESS_TOKEN_FILE": str(token_file), "PERDURE_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == 2
    refused = _cli(setup, "services", "list", env={})
    assert refused.returncode != 0
    assert "bearer token" in refused.stderr.lower() and "PERDURE_ADMIN_TOKEN" in refused.stderr


def test_no_token_reaches_the_log(setup: Setup) -> None:
    _chain(setup, _bearer(INGRESS_TOKEN))
    log = setup.log.read_text(errors="replace")
    assert "requires a bearer token" in log  # the server says so at start, without the value
    assert INGRESS_TOKEN not in log and ADMIN_TOKEN not in log


# --- settings ----------------------------------------------------------------------------


def test_the_same_token_for_both_apis_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        load({"ingress_token": INGRESS_TOKEN, "admin_token": INGRESS_TOKEN}, env={})
    assert "same" in str(refused.value) and INGRESS_TOKEN not in str(refused.value)


@pytest.mark.parametrize("token", ["short", "has a space in it 123", "tab\there-0123456789"])
def test_a_weak_or_malformed_token_is_refused_without_being_quoted(token: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(env={"PERDURE_ADMIN_TOKEN": token})
    assert "PERDURE_ADMIN_TOKEN" in str(refused.value) and token not in str(refused.value)


def test_a_token_given_as_value_and_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(ADMIN_TOKEN)
    with pytest.raises(ConfigError, match="twice"):
        load({"admin_token_file": str(path)}, env={"PERDURE_ADMIN_TOKEN": ADMIN_TOKEN})
    config = load({"admin_token_file": str(path)}, env={})
    assert config.admin_token is not None and config.admin_token.matches(ADMIN_TOKEN.encode())
    assert ADMIN_TOKEN not in repr(config) and ADMIN_TOKEN not in str(config)


def test_a_server_given_the_same_token_twice_does_not_start(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "perdure.cli.main", "server", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        env={
            **os.environ,
            "PERDURE_INGRESS_TOKEN": ADMIN_TOKEN,
            "PERDURE_ADMIN_TOKEN": ADMIN_TOKEN,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert "same" in out.stderr and ADMIN_TOKEN not in out.stderr


def test_perdure_dev_registers_with_the_admin_token_and_never_prints_a_token(
    tmp_path: Path,
) -> None:
    import re

    from tests.helpers.processes import free_port, start_dev, stop_dev, wait_until

    ingress, admin = free_port(), free_port()
    log = tmp_path / "dev.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")},
        "PERDURE_INGRESS_TOKEN": INGRESS_TOKEN,
        "PERDURE_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    proc = start_dev(tmp_path / "data", log, ingress, admin, env=env)
    try:
        banner = wait_until(
            lambda: "Try:" in log.read_text() and log.read_text(), what="the dev banner"
        )
        assert '-H "Authorization: Bearer $PERDURE_INGRESS_TOKEN"' in banner
        url = re.findall(r"(http://\S+/Greeter/greet)", banner)[0]
        assert httpx.post(url, json="Ada", timeout=30).status_code == 401
        answer = httpx.post(url, json="Ada", headers=_bearer(INGRESS_TOKEN), timeout=30)
        assert answer.status_code == 200, answer.text
    finally:
        stop_dev(proc)
    text = log.read_text()
    assert INGRESS_TOKEN not in text and ADMIN_TOKEN not in text
