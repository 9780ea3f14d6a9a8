"""The crash suite's load generator and its checker.

`Workload` makes a mixed set of invocations (a `ctx.run` chain with sleeps, adds on a few
object keys, durable naps) for the services of `tests.services.crash_app`, each sent once with
its own idempotency key. A send the server did not answer (it died under the request) is sent
again with the same key after the restart, so whatever the kill interrupted, each request is
accepted once. `check` then reads the outputs, the server's invocation list and the ledger the
services wrote, and returns every broken promise as a sentence (an empty list: all kept).
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# How many object keys the adds spread over: few enough that adds queue behind each other.
TALLY_KEYS = 8
# The mix: a third each of the first three in the default run, plus calls and workflows.
KINDS = ("chain", "add", "nap", "chain", "add", "nap", "call", "flow")


@dataclass
class Request:
    """One invocation the load generator asked for."""

    request_id: str
    kind: str  # chain | add | nap | call | flow
    path: str
    body: dict[str, Any]
    idempotency_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    invocation_id: str | None = None
    output: Any = None


@dataclass
class Figures:
    """What a run measured, for docs/reliability.md and bench/crash_repeat.py."""

    mode: str
    invocations: int = 0
    kills: int = 0
    in_flight_at_kill: list[int] = field(default_factory=list)
    resent_after_kill: int = 0
    reruns_before_stored: int = 0  # ctx.run closures that ran again before their result was kept
    lost: int = 0
    duplicate_journaled_steps: int = 0
    early_timers: int = 0
    state_mismatches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Workload:
    def __init__(self, size: int, seed: int) -> None:
        self.random = random.Random(seed)
        self.requests: list[Request] = []
        for n in range(size):
            request_id = f"r{n:05}-{uuid.uuid4().hex[:6]}"
            kind = KINDS[n % len(KINDS)]
            if kind == "chain":
                body: dict[str, Any] = {
                    "id": request_id,
                    "steps": self.random.randint(3, 6),
                    "pauseMillis": self.random.randint(300, 1200),
                }
                path = "Chain/run"
            elif kind == "add":
                body = {
                    "id": request_id,
                    "delta": self.random.randint(1, 9),
                    "holdMillis": self.random.randint(50, 250),
                }
                path = f"Tally/key{self.random.randrange(TALLY_KEYS)}/add"
            elif kind == "nap":
                body = {"id": request_id, "millis": self.random.randint(500, 6000)}
                path = "Napper/nap"
            elif kind == "call":
                key = f"key{self.random.randrange(TALLY_KEYS)}"
                body = {"id": request_id, "key": key, "delta": self.random.randint(1, 9)}
                path = "Caller/run"
            else:
                body = {"id": request_id, "pauseMillis": self.random.randint(300, 3000)}
                path = f"Flow/{request_id}/run"
            self.requests.append(Request(request_id, kind, path, body))

    def send(self, ingress: str, requests: list[Request]) -> int:
        """Sends each request not yet accepted; answers how many got no answer."""

        client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=16))

        def one(request: Request) -> bool:
            try:
                r = client.post(
                    f"{ingress}/{request.path}/send",
                    json=request.body,
                    # A workflow's key makes its run idempotent; it refuses idempotency keys.
                    headers={}
                    if request.kind == "flow"
                    else {"idempotency-key": request.idempotency_key},
                )
            except httpx.HTTPError:
                return False
            if r.status_code != 202:
                return False
            invocation_id = r.json()["invocationId"]
            if request.invocation_id not in (None, invocation_id):
                raise AssertionError(
                    f"{request.request_id}: a repeated send answered {invocation_id}, "
                    f"the first {request.invocation_id}"
                )
            request.invocation_id = invocation_id
            return True

        with client, concurrent.futures.ThreadPoolExecutor(16) as pool:
            answered = list(pool.map(one, [r for r in requests if r.invocation_id is None]))
        return answered.count(False)

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if r.invocation_id is not None]

    def wait_outputs(self, ingress: str, timeout: float) -> list[Request]:
        """Polls every accepted invocation's output until all are done; answers those not."""
        deadline = time.monotonic() + timeout
        waiting = [r for r in self.accepted() if r.output is None]
        with httpx.Client(timeout=10) as client:
            while waiting and time.monotonic() < deadline:
                still = []
                for request in waiting:
                    try:
                        r = client.get(
                            f"{ingress}/restate/invocation/{request.invocation_id}/output"
                        )
                    except httpx.HTTPError:
                        still.append(request)
                        continue
                    if r.status_code == 200:
                        request.output = r.json()
                    else:
                        still.append(request)
                waiting = still
                if waiting:
                    time.sleep(0.3)
        return waiting


def in_flight(admin: str) -> int:
    """How many invocations the server holds that have not completed."""
    r = httpx.get(f"{admin}/invocations", params={"status": "active", "limit": 1000}, timeout=10)
    body = r.json()
    return len(body["invocations"] if isinstance(body, dict) else body)


def read_ledger(path: Path) -> dict[tuple[str, str], list[str]]:
    """(request id, step) -> the nonces of every execution of that step, in order."""
    executions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for line in path.read_text().splitlines():
        entry = json.loads(line)  # a torn line would fail here: appends must be whole
        executions[(entry["id"], entry["step"])].append(entry["nonce"])
    return executions


def _journaled_steps(request: Request) -> list[tuple[str, str]]:
    """(step name, nonce stored in the journal) as the handler answered them."""
    output = request.output
    if request.kind == "chain":
        return [(f"step{i}", nonce) for i, nonce in enumerate(output)]
    if request.kind == "add":
        return [("add", output["nonces"][0])]
    if request.kind == "call":
        return [("after-call", output["nonces"][0])]
    if request.kind == "flow":
        return list(zip(("prepare", "finish"), output, strict=True))
    return list(zip(("before", "after"), output["nonces"], strict=True))


def _callee_steps(request: Request) -> list[tuple[str, str, str]]:
    """(request id, step, journaled nonce) of what a call's callee ran."""
    if request.kind != "call" or request.output is None:
        return []
    return [(f"{request.request_id}-callee", "add", request.output["callee"]["nonces"][0])]


def check(
    workload: Workload, figures: Figures, ledger: Path, ingress: str, admin: str
) -> list[str]:
    """Every promise the crash suite checks; the broken ones as sentences."""
    problems: list[str] = []
    not_accepted = [r.request_id for r in workload.requests if r.invocation_id is None]
    if not_accepted:
        problems.append(f"{len(not_accepted)} requests were never accepted: {not_accepted[:5]}")
    not_done = [r for r in workload.accepted() if r.output is None]
    figures.lost = len(not_done) + len(not_accepted)
    if not_done:
        problems.append(
            f"{len(not_done)} accepted invocations never completed: "
            f"{[r.invocation_id for r in not_done[:5]]}"
        )

    # Exactly once: the server holds one invocation per request, all completed.
    rows = []
    for service in ("Chain", "Tally", "Napper", "Caller", "Flow"):  # 1000 at most per answer
        r = httpx.get(
            f"{admin}/invocations", params={"limit": 1000, "service": service}, timeout=30
        )
        body = r.json()
        rows.extend(body["invocations"] if isinstance(body, dict) else body)
    everything = [i for i in rows if i.get("target_handler_name") != "get"]
    mine = [i for i in everything if i.get("invoked_by") is None]
    ids = [i["id"] for i in mine]
    expected = {req.invocation_id for req in workload.accepted()}
    if len(ids) != len(set(ids)) or set(ids) != expected:
        problems.append(
            f"the server holds {len(ids)} invocations ({len(set(ids))} distinct) for "
            f"{len(expected)} accepted requests"
        )
    calls = sum(1 for r in workload.accepted() if r.kind == "call")
    callees = [i for i in everything if i.get("invoked_by") is not None]
    if len(callees) != calls:
        problems.append(f"{calls} calls made {len(callees)} callee invocations")
    not_completed = [i["id"] for i in everything if i["status"] != "completed"]
    if not_completed:
        problems.append(f"invocations not completed: {not_completed[:5]}")

    # The journal: each stored ctx.run result is the last execution of its step.
    executions = read_ledger(ledger)
    for request in workload.accepted():
        if request.output is None:
            continue
        steps = [(request.request_id, step, nonce) for step, nonce in _journaled_steps(request)]
        for request_id, step, nonce in steps + _callee_steps(request):
            runs = executions.get((request_id, step), [])
            if nonce not in runs:
                problems.append(f"{request_id}/{step}: journaled {nonce} was never run")
                continue
            after = len(runs) - 1 - runs.index(nonce)
            figures.reruns_before_stored += runs.index(nonce)
            if after:
                figures.duplicate_journaled_steps += after
                problems.append(
                    f"{request_id}/{step} ran {after} more time(s) after its result was journaled"
                )

    # Objects: each key's number is the sum of the adds accepted for it.
    sums: dict[str, int] = defaultdict(int)
    for request in workload.accepted():
        if request.kind == "call":
            sums[request.body["key"]] += request.body["delta"]
        if request.kind == "add":
            sums[request.path.split("/")[1]] += request.body["delta"]
            out = request.output
            if out is not None and out["new"] - out["old"] != request.body["delta"]:
                figures.state_mismatches += 1
                problems.append(f"{request.request_id}: add answered {out}")
    for key, total in sums.items():
        value = httpx.post(f"{ingress}/Tally/{key}/get", json=None, timeout=30).json()
        if value != total:
            figures.state_mismatches += 1
            problems.append(f"Tally/{key} holds {value}, the adds accepted for it sum to {total}")

    # Timers: no nap woke before it was due.
    for request in workload.accepted():
        if request.kind == "nap" and request.output is not None:
            slept = request.output["after"] - request.output["before"]
            if slept < request.body["millis"] / 1000:
                figures.early_timers += 1
                problems.append(
                    f"{request.request_id}: a {request.body['millis']} ms sleep woke after "
                    f"{slept * 1000:.0f} ms"
                )
    return problems
