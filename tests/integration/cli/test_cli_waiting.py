"""`perdure explain` on invocations that wait for something else: an awakeable, a workflow's
durable promise, a call whose callee keeps failing. Real server, official SDK, CLI as a
subprocess; the awakeable is resolved with the very command `explain` prints.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess, wait_until
from tests.integration.cli.test_cli_end_to_end import RETRIES, Cli

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    tmp = tmp_path_factory.mktemp("cli-waiting")
    server = PerdureServer(tmp / "data", tmp / "server.log", env=RETRIES).start()
    service = ServiceProcess(
        "tests.integration.cli.waiting_app",
        tmp / "service.log",
        args=["--mode", "request_response"],
    ).start()
    try:
        runner = Cli(server.admin, server.ingress)
        runner.ok("deployments", "register", service.uri, "--use-http1.1")
        yield runner
    finally:
        service.stop()
        server.stop()


def suspended(cli: Cli, invocation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (d := cli.explain(invocation_id))["reason"] == "suspended" and d,
        what=f"{invocation_id} to suspend",
    )
    return found


def test_awakeable_is_named_and_the_printed_command_resolves_it(cli: Cli) -> None:
    invocation_id = cli.send("Waiter/for_awakeable")
    diagnosis = suspended(cli, invocation_id)
    match = re.search(r"the awakeable (sign_1\S+)", diagnosis["summary"])
    assert match, diagnosis
    awakeable = match.group(1).rstrip(".")
    resolve = next(s for s in diagnosis["next_steps"] if s.startswith("curl "))
    words = shlex.split(resolve.split("#")[0])
    url = words[words.index("POST") + 1]
    assert url == f"{cli.ingress}/restate/awakeables/{awakeable}/resolve"
    answer = httpx.post(url, json="cli", timeout=10)
    assert answer.status_code == 202, answer.text
    wait_until(lambda: cli.explain(invocation_id)["reason"] == "succeeded", what="the wake-up")
    output = httpx.get(f"{cli.ingress}/restate/invocation/{invocation_id}/output", timeout=10)
    assert output.json() == "woken with cli"


def test_workflow_waits_for_its_durable_promise(cli: Cli) -> None:
    run_id = cli.send("Approval/wf-1/run")
    diagnosis = suspended(cli, run_id)
    assert "waiting for the durable promise 'decision'" in diagnosis["summary"]
    cli.ok("invoke", "Approval/wf-1/decide", '"ops"')
    wait_until(lambda: cli.explain(run_id)["reason"] == "succeeded", what="the approval")


def test_a_call_is_explained_with_its_failing_callee(cli: Cli) -> None:
    caller = cli.send("Waiter/calls_failing")

    def callee_paused() -> dict[str, Any] | None:
        d = cli.explain(caller)
        callee_facts = [f for f in d["details"] if f.startswith("The callee:")]
        return d if d["reason"] == "suspended" and "paused" in "".join(callee_facts) else None

    diagnosis = wait_until(callee_paused, what="the callee to pause under its caller")
    match = re.search(r"a call to Waiter/always_fails \((inv_\w+)\)", diagnosis["summary"])
    assert match, diagnosis
    callee = match.group(1)
    assert any(
        f.startswith("The callee: Waiter/always_fails is paused after 3 attempt(s)")
        for f in diagnosis["details"]
    )
    assert diagnosis["next_steps"][0].startswith(f"perdure explain {callee}")
    assert cli.explain(callee)["reason"] == "paused"
    cli.ok("invocations", "kill", callee)
    ended = wait_until(
        lambda: (d := cli.explain(caller))["reason"] not in ("suspended", "running") and d,
        what="the caller to end",
    )
    # The callee was killed; the caller was not: it failed with what its call returned.
    assert ended["reason"] == "failed", ended
