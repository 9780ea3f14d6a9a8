"""The invoker's concurrency limit on real sockets: a server with a limit of 2 attempts.

Ten one-way sends to a handler that holds its attempt open until the test opens a gate: never
more than two run at the deployment at once, the others wait in the invoker's queue (the admin
API shows them `ready`), and all ten complete. A call that arrives while sends wait starts
before them. A kill -9 while sends wait loses none of them: the restarted server runs them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers.processes import ROOT, PerdureServer, ServiceProcess, wait_until

pytestmark = [pytest.mark.crash]

LIMIT = 2


@dataclass
class LimitedServer(PerdureServer):
    """`perdure server --invoker-concurrency-limit LIMIT`."""

    def start(self) -> LimitedServer:
        cmd = [
            sys.executable, "-m", "perdure.cli.main", "server",
            "--invoker-concurrency-limit", str(LIMIT),
            "--ingress-bind", f"127.0.0.1:{self.ingress_port}",
            "--admin-bind", f"127.0.0.1:{self.admin_port}",
            "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ}
            )
        wait_until(self._healthy, what=f"perdure server health (log: {self.log_path})")
        return self


@dataclass
class Rig:
    server: LimitedServer
    service: ServiceProcess
    log: Path
    gate: Path

    def send(self, name: str) -> str:
        r = httpx.post(
            f"{self.server.ingress}/Gauge/hold/send",
            json={"id": name, "gate": str(self.gate)},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        return str(r.json()["invocationId"])

    def lines(self) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines()]

    def started(self) -> list[str]:
        return [words[1] for words in self.lines() if words[0] == "start"]

    def most_open(self) -> int:
        return max(int(words[2]) for words in self.lines() if words[0] == "start")

    def status(self, invocation_id: str) -> Any:
        r = httpx.get(f"{self.server.admin}/invocations/{invocation_id}", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["status"]

    def listed(self, status: str) -> set[str]:
        r = httpx.get(
            f"{self.server.admin}/invocations",
            params={"status": status, "service": "Gauge", "limit": 1000},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return {inv["id"] for inv in r.json()["invocations"]}

    def all_completed(self, ids: list[str]) -> bool:
        return set(ids) <= self.listed("completed")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    log, gate = tmp_path / "gauge.log", tmp_path / "gate"
    log.touch()
    service = ServiceProcess(
        "tests.integration.core.limit_app", tmp_path / "service.log", env={"GAUGE_LOG": str(log)}
    ).start()
    server = LimitedServer(tmp_path / "data", tmp_path / "server.log").start()
    server.register(service.uri)
    yield Rig(server, service, log, gate)
    server.stop()
    service.stop()


def test_ten_sends_run_two_at_a_time_and_all_complete(rig: Rig) -> None:
    ids = [rig.send(f"s{i}") for i in range(10)]
    wait_until(lambda: len(rig.started()) == LIMIT, what="two attempts open")
    # The eight others wait for a slot; the admin API says so.
    wait_until(lambda: rig.listed("ready") == set(ids[LIMIT:]), what="eight ready")
    assert rig.listed("running") == set(ids[:LIMIT])
    assert rig.status(ids[-1]) == "ready"
    assert len(rig.started()) == LIMIT  # nothing else started meanwhile
    rig.gate.touch()
    wait_until(lambda: rig.all_completed(ids), timeout=60, what="all ten completed")
    assert sorted(rig.started()) == sorted(f"s{i}" for i in range(10))
    assert rig.most_open() == LIMIT
    assert rig.started() == [f"s{i}" for i in range(10)]  # first in, first out


def test_a_call_starts_before_waiting_sends(rig: Rig) -> None:
    sends = [rig.send(f"s{i}") for i in range(6)]
    wait_until(lambda: len(rig.listed("ready")) == 4, what="four sends waiting")

    def call() -> httpx.Response:
        return httpx.post(
            f"{rig.server.ingress}/Gauge/hold", json={"id": "call", "gate": None}, timeout=60
        )

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(call)
        wait_until(lambda: len(rig.listed("ready")) == 5, what="the call waiting too")
        rig.gate.touch()
        assert answer.result(timeout=60).json() == "call"
    wait_until(lambda: rig.all_completed(sends), timeout=60, what="all sends completed")
    assert rig.started()[LIMIT] == "call"  # the first free slot went to the call
    assert rig.most_open() <= LIMIT


def test_waiting_sends_survive_kill9(rig: Rig) -> None:
    ids = [rig.send(f"s{i}") for i in range(10)]
    wait_until(lambda: len(rig.listed("ready")) == 10 - LIMIT, what="eight waiting")
    rig.server.kill9()
    rig.gate.touch()
    rig.server.start()
    wait_until(lambda: rig.all_completed(ids), timeout=60, what="all ten completed")
    ended = {words[1] for words in rig.lines() if words[0] == "end"}
    assert ended == {f"s{i}" for i in range(10)}


def test_a_waiting_invocation_can_be_killed_and_never_starts(rig: Rig) -> None:
    ids = [rig.send(f"s{i}") for i in range(4)]
    wait_until(lambda: len(rig.listed("ready")) == 4 - LIMIT, what="two waiting")
    r = httpx.patch(f"{rig.server.admin}/invocations/{ids[-1]}/kill", timeout=30)
    assert r.status_code in (200, 202), r.text
    wait_until(lambda: rig.status(ids[-1]) == "completed", what="the killed one completed")
    rig.gate.touch()
    wait_until(lambda: rig.all_completed(ids), timeout=60, what="the others completed")
    assert rig.started() == ["s0", "s1", "s2"]  # the killed one never reached the deployment
