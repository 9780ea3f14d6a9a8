"""The operator CLI end to end: a real `perdure server`, the official SDK's test services, and
`perdure ...` run as a subprocess, the way an operator runs it.

The services run in request/response mode (registered with --use-http1.1), so a handler that
awaits a timer suspends at once. Retries are slow and few (1 s apart, 3 attempts) so that a
failing invocation is seen backing off, then paused, while other calls queue behind it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.processes import ROOT, PerdureServer, ServiceProcess, free_port, wait_until

pytestmark = pytest.mark.interop

RETRIES = {
    "PERDURE_RETRY_INITIAL_INTERVAL": "1s",
    "PERDURE_RETRY_FACTOR": "1",
    "PERDURE_RETRY_MAX_INTERVAL": "1s",
    "PERDURE_RETRY_MAX_ATTEMPTS": "3",
}


@dataclass
class Cli:
    """Runs `perdure ARGS` against one server, as a subprocess."""

    admin: str
    ingress: str

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PERDURE_ADMIN_URL": self.admin, "PERDURE_INGRESS_URL": self.ingress}
        return subprocess.run(
            [sys.executable, "-m", "perdure.cli.main", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"perdure {' '.join(args)}: {result.stderr}{result.stdout}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def send(self, target: str, value: str | None = None) -> str:
        receipt = self.json("invoke", target, *([value] if value is not None else []), "--send")
        return str(receipt["invocationId"])

    def explain(self, subject: str) -> dict[str, Any]:
        result = self.run("explain", subject, "--json")
        document: dict[str, Any] = json.loads(result.stdout)
        return document


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    tmp = tmp_path_factory.mktemp("cli")
    server = PerdureServer(tmp / "data", tmp / "server.log", env=RETRIES).start()
    service = ServiceProcess(
        "tests.services.official_app", tmp / "service.log", args=["--mode", "request_response"]
    ).start()
    try:
        runner = Cli(server.admin, server.ingress)
        out = runner.ok("deployments", "register", service.uri, "--use-http1.1")
        assert f"at {service.uri}: registered." in out
        yield runner
    finally:
        service.stop()
        server.stop()


def test_register_then_list_and_describe_deployments_and_services(cli: Cli) -> None:
    deployments = cli.json("deployments", "list")["deployments"]
    assert len(deployments) == 1 and deployments[0]["http_version"] == "HTTP/1.1"
    deployment_id = deployments[0]["id"]
    assert deployment_id in cli.ok("deployments", "list")
    described = cli.ok("deployments", "describe", deployment_id)
    assert "RequestResponse over HTTP/1.1" in described
    assert "Counter" in described and "slow_add" in described
    table = cli.ok("services", "list")
    assert table.splitlines()[0].split() == ["NAME", "TYPE", "REVISION", "DEPLOYMENT", "HANDLERS"]
    assert "Sleeper" in table
    counter = cli.ok("services", "describe", "Counter")
    assert "VirtualObject" in counter and "attempts, then pause" in counter
    assert cli.json("services", "describe", "Flaky")["deployment_id"] == deployment_id
    again = cli.run("deployments", "register", deployments[0]["uri"], "--use-http1.1")
    assert again.returncode == 0 and "already registered" in again.stdout


def test_invoke_calls_and_sends_then_invocations_show_them(cli: Cli) -> None:
    assert cli.ok("invoke", "Greeter/greet", '"Ada"').strip() == '"Hello Ada!"'
    assert cli.ok("invoke", "Counter/cli-a/add", "2").strip() == "2"
    assert cli.run("invoke", "Counter/cli-a/add", "-", stdin="3").stdout.strip() == "5"
    invocation_id = cli.send("Greeter/greet", '"Bob"')
    wait_until(
        lambda: cli.json("invocations", "describe", invocation_id)["status"] == "completed",
        what="the sent greeting to complete",
    )
    restarted = cli.json("invocations", "restart", invocation_id)["new_invocation_id"]
    assert restarted != invocation_id
    wait_until(
        lambda: cli.explain(restarted)["reason"] == "succeeded", what="the restarted greeting"
    )
    described = cli.ok("invocations", "describe", invocation_id)
    assert "outcome:" in described and "success" in described
    assert described.rstrip().splitlines()[-1].split() == ["1", "output"]
    listed = cli.json("invocations", "list", "--service", "Counter", "--key", "cli-a")
    assert [i["target"] for i in listed["invocations"]] == ["Counter/cli-a/add"] * 2
    assert invocation_id in cli.ok("invocations", "list", "--status", "completed", "--limit", "100")


def test_idempotency_key_runs_a_send_once(cli: Cli) -> None:
    first = cli.json("invoke", "Counter/cli-idem/add", "1", "--send", "--idempotency-key", "k7")
    second = cli.json("invoke", "Counter/cli-idem/add", "1", "--send", "--idempotency-key", "k7")
    assert first["invocationId"] == second["invocationId"]
    assert second["status"] == "PreviouslyAccepted"


def test_explain_a_suspended_sleeper_then_cancel_it(cli: Cli) -> None:
    invocation_id = cli.send("Sleeper/nap", "600000")
    wait_until(
        lambda: cli.explain(invocation_id)["reason"] == "suspended", what="the sleeper to suspend"
    )
    out = cli.ok("explain", invocation_id)
    assert "Sleeper/nap is suspended, waiting for a timer due at" in out
    assert "(in 9m" in out or "(in 10m" in out
    assert f"perdure invocations cancel {invocation_id}" in out
    assert "Cancellation requested" in cli.ok("invocations", "cancel", invocation_id)
    wait_until(lambda: cli.explain(invocation_id)["reason"] == "cancelled", what="the cancellation")


def test_delayed_send_is_explained_as_scheduled(cli: Cli) -> None:
    invocation_id = cli.json("invoke", "Greeter/greet", '"Later"', "--send", "--delay", "1h")[
        "invocationId"
    ]
    diagnosis = cli.explain(invocation_id)
    assert diagnosis["reason"] == "scheduled"
    assert "(in 59m" in diagnosis["summary"] or "(in 1h" in diagnosis["summary"]
    assert "Killed" in cli.ok("invocations", "kill", invocation_id)


def test_failing_call_backs_off_pauses_and_blocks_its_key_until_killed(cli: Cli) -> None:
    failing = cli.send("Flaky/cli-f/succeed_after", "1000")
    queued = cli.send("Flaky/cli-f/terminal", '"after the holder"')

    backing_off = wait_until(
        lambda: (d := cli.explain(failing))["reason"] == "retrying" and d,
        what="the failing call to back off",
    )
    assert "backing off after" in backing_off["summary"]
    assert any("fails on purpose" in fact for fact in backing_off["details"])
    assert any(fact.startswith("Next retry at") for fact in backing_off["details"])

    waiting = cli.explain(queued)
    assert waiting["reason"] == "waiting-for-lock"
    assert f"invocation {failing}" in waiting["summary"]
    assert waiting["next_steps"][0].startswith(f"perdure explain {failing}")

    wait_until(lambda: cli.explain(failing)["reason"] == "paused", what="the call to pause")
    paused = cli.ok("explain", failing)
    assert "paused after 3 attempt(s)" in paused
    assert f"perdure invocations resume {failing}" in paused
    key = cli.explain("Flaky/cli-f")
    assert key["reason"] == "in-flight"
    assert any(fact.startswith(f"{failing} holds the key") for fact in key["details"])

    assert "Resumed" in cli.ok("invocations", "resume", failing)
    wait_until(lambda: cli.explain(failing)["reason"] == "paused", what="the call to pause again")
    assert cli.json("invocations", "describe", failing)["attempts"] > 3

    assert "Killed" in cli.ok("invocations", "kill", failing)
    assert cli.explain(failing)["reason"] == "killed"
    wait_until(lambda: cli.explain(queued)["reason"] == "failed", what="the queued call to run")
    assert "[418] after the holder" in cli.explain(queued)["summary"]
    assert "Purged" in cli.ok("invocations", "purge", failing)
    gone = cli.run("explain", failing)
    assert gone.returncode == 1 and "never accepted" in gone.stdout


def test_errors_say_what_to_do_and_exit_non_zero(cli: Cli) -> None:
    unknown = cli.run("invoke", "Nope/run", "1")
    assert unknown.returncode == 1
    assert "Nope" in unknown.stderr and "perdure deployments register" in unknown.stderr
    failed = cli.run("invoke", "Flaky/cli-e/terminal", '"no"')
    assert failed.returncode == 1 and "the handler failed [418]: no" in failed.stderr
    not_registered = cli.run("explain", "Nope")
    assert not_registered.returncode == 1 and "Registered services:" in not_registered.stdout
    purge_running = cli.run("invocations", "purge", cli.send("Sleeper/nap", "600000"))
    assert purge_running.returncode == 1 and "error:" in purge_running.stderr
    down = cli.run("--admin-url", f"127.0.0.1:{free_port()}", "services", "list")
    assert down.returncode == 3 and "perdure server" in down.stderr


def test_remove_a_deployment_then_its_invocations_are_explained(cli: Cli, tmp_path: Path) -> None:
    extra = ServiceProcess("tests.services.official_app", tmp_path / "extra.log").start()
    try:
        registered = cli.json("deployments", "register", extra.uri, "--force")
        assert {s["name"] for s in registered["services"]} >= {"Greeter", "Sleeper"}
    finally:
        extra.stop()
    invocation_id = cli.send("Greeter/greet", '"nobody home"')
    unreachable = wait_until(
        lambda: (d := cli.explain(invocation_id))["reason"] == "deployment-unreachable" and d,
        what="the call to fail on the stopped deployment",
    )
    assert extra.uri in unreachable["summary"]
    assert "Deployment" in cli.ok("deployments", "remove", registered["id"], "--force")
    removed = wait_until(
        lambda: (d := cli.explain(invocation_id))["reason"] == "deployment-removed" and d,
        what="the explanation to notice the removal",
    )
    assert registered["id"] in removed["summary"]
    cli.ok("invocations", "kill", invocation_id)
