"""kill -9 under load: the server, the deployment, or both, at random moments, several times.

A load generator keeps a mixed set of invocations in flight (ctx.run chains with sleeps, adds
on object keys, durable naps), each sent with an idempotency key. Between waves of sends the
test kills the server (restarted on the same data directory), the deployment (restarted on the
same port), or both. Afterwards every accepted invocation completed exactly once, every object
holds the sum of its adds, no journaled `ctx.run` ran again after its result was stored, and no
timer fired early (`workload.check`).

Size: ``PERDURE_CRASH_N`` invocations (default 200), ``PERDURE_CRASH_KILLS`` kills (default 3),
``PERDURE_CRASH_SEED`` for the random moments (printed, so a failure can be replayed).
``PERDURE_CRASH_REPORT=path`` appends each run's figures to that file as JSON lines.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import threading
import time
from pathlib import Path

import pytest
from tests.crash.workload import Figures, Workload, check, in_flight
from tests.helpers.processes import PerdureServer, ServiceProcess

pytestmark = [pytest.mark.crash, pytest.mark.interop, pytest.mark.timeout(400)]

SIZE = int(os.environ.get("PERDURE_CRASH_N", "200"))
KILLS = int(os.environ.get("PERDURE_CRASH_KILLS", "3"))
FAST_RETRIES = {
    "PERDURE_RETRY_INITIAL_INTERVAL": "50ms",
    "PERDURE_RETRY_MAX_INTERVAL": "300ms",
    # A deployment that is down for a few seconds must not exhaust the attempts.
    "PERDURE_RETRY_MAX_ATTEMPTS": "1000",
}


def _seed() -> int:
    return int(os.environ.get("PERDURE_CRASH_SEED", str(random.randrange(2**32))))


def _report(figures: Figures, seed: int) -> None:
    target = os.environ.get("PERDURE_CRASH_REPORT")
    if target:
        with open(target, "a") as out:
            out.write(json.dumps({**figures.as_dict(), "seed": seed}) + "\n")


@pytest.mark.parametrize("victim", ["server", "deployment", "both"])
def test_kill9_under_load_loses_and_repeats_nothing(tmp_path: Path, victim: str) -> None:
    run_crash(tmp_path, victim, SIZE, KILLS)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("PERDURE_CRASH_LARGE"),
    reason="set PERDURE_CRASH_LARGE=1 to run it (about a minute)",
)
@pytest.mark.timeout(900)
def test_kill9_large(tmp_path: Path) -> None:
    """1000 invocations, 8 kills of server and deployment together."""
    run_crash(tmp_path, "both", 1000, 8)


def run_crash(tmp_path: Path, victim: str, size: int, kills: int) -> None:
    seed = _seed()
    print(f"crash suite: victim={victim} size={size} kills={kills} seed={seed}")
    rng = random.Random(seed)
    ledger = tmp_path / "ledger.jsonl"
    ledger.touch()
    server = PerdureServer(tmp_path / "data", tmp_path / "server.log", env=FAST_RETRIES).start()
    service = ServiceProcess(
        "tests.services.crash_app", tmp_path / "service.log", env={"LEDGER": str(ledger)}
    ).start()
    workload = Workload(size, seed)
    figures = Figures(victim, invocations=size)
    try:
        server.register(service.uri)
        stop_sending = threading.Event()

        def keep_sending() -> int:
            """Sends until every request is accepted; answers how many sends got no answer."""
            unanswered = 0
            while not stop_sending.is_set():
                missing = workload.send(server.ingress, workload.requests)
                unanswered += missing
                if missing == 0:
                    break
                time.sleep(0.2)  # the server is down or starting: try again shortly
            return unanswered

        with concurrent.futures.ThreadPoolExecutor(1) as sender:
            # All requests go out at once while the kills fall: some sends die with the server
            # and are sent again, with the same idempotency key, once it is back.
            sending = sender.submit(keep_sending)
            for _ in range(kills):
                time.sleep(rng.uniform(0.3, 1.5))  # a random moment
                figures.in_flight_at_kill.append(in_flight(server.admin))
                if victim in ("server", "both"):
                    server.kill9()
                if victim in ("deployment", "both"):
                    service.kill9()
                figures.kills += 1
                time.sleep(rng.uniform(0.0, 0.5))
                if victim in ("deployment", "both"):
                    service.start()  # same port: the registered URI stays right
                if victim in ("server", "both"):
                    server.start()
            stop_sending.set()
            figures.resent_after_kill = sending.result()
        # Sends the kills cut off: repeated with their idempotency keys until accepted.
        for _ in range(5):
            if workload.send(server.ingress, workload.requests) == 0:
                break
        late = workload.wait_outputs(server.ingress, timeout=150)
        problems = check(workload, figures, ledger, server.ingress, server.admin)
        _report(figures, seed)
        print(json.dumps(figures.as_dict()))
        assert not late, f"{len(late)} invocations never completed (seed {seed})"
        assert not problems, f"seed {seed}: " + "\n".join(problems[:20])
        assert "Traceback" not in server.log(), server.log()
    finally:
        service.stop()
        server.stop()
