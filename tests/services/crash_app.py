"""Services for the crash and security tests, written with the official `restate-sdk` (1.2.0).

Run: python -m tests.services.crash_app --port 9080 [--identity-key publickeyv1_...]

Every `ctx.run` closure appends one JSON line to the ledger file named by env ``LEDGER``
before it returns: ``{"id": <request id>, "step": <name>, "nonce": <fresh uuid>}``. The value
journaled for the step is that nonce, and each handler answers the nonces it got back from its
journal. A checker can so tell, step by step, which execution's result was stored, and whether
a closure ran again after that (its line would come after the stored one).

- ``Chain/run {"id", "steps"}``: a chain of `ctx.run` steps with a short sleep between them;
- ``Tally/{key}/add {"id", "delta", "holdMillis"}``: adds ``delta`` to the key's number (one
  `ctx.run` step, then a sleep that holds the key);
- ``Tally/{key}/get``: the key's number;
- ``Napper/nap {"id", "millis"}``: journals the wall clock, sleeps durably, journals it again;
- ``Caller/run {"id", "key", "delta"}``: calls ``Tally/{key}/add``, then runs one step;
- ``Flow/{id}/run {"id", "pauseMillis"}``: a workflow with two steps around a sleep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import timedelta
from typing import Any

import restate
from restate import Context, ObjectContext, ObjectSharedContext, WorkflowContext

LEDGER = os.environ.get("LEDGER", "ledger.jsonl")


def record(request_id: str, step: str) -> str:
    """Appends one ledger line (one `write`, O_APPEND: whole even across processes)."""
    nonce = uuid.uuid4().hex
    line = json.dumps({"id": request_id, "step": step, "nonce": nonce}) + "\n"
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return nonce


chain = restate.Service("Chain")


@chain.handler()
async def run(ctx: Context, req: dict[str, Any]) -> list[str]:
    nonces = []
    for step in range(int(req["steps"])):
        name = f"step{step}"
        nonces.append(await ctx.run(name, lambda name=name: record(req["id"], name)))
        await ctx.sleep(timedelta(milliseconds=int(req.get("pauseMillis", 100))))
    return nonces


tally = restate.VirtualObject("Tally")


@tally.handler()
async def add(ctx: ObjectContext, req: dict[str, Any]) -> dict[str, Any]:
    old = await ctx.get("n", type_hint=int) or 0
    nonce = await ctx.run("add", lambda: record(req["id"], "add"))
    # Holds the key a moment, so the adds behind it wait in the key's inbox across kills.
    await ctx.sleep(timedelta(milliseconds=int(req.get("holdMillis", 0))))
    ctx.set("n", old + int(req["delta"]))
    return {"old": old, "new": old + int(req["delta"]), "nonces": [nonce]}


@tally.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return await ctx.get("n", type_hint=int) or 0


napper = restate.Service("Napper")


def _stamp(request_id: str, step: str) -> dict[str, Any]:
    return {"nonce": record(request_id, step), "at": time.time()}


@napper.handler()
async def nap(ctx: Context, req: dict[str, Any]) -> dict[str, Any]:
    before = await ctx.run("before", lambda: _stamp(req["id"], "before"))
    await ctx.sleep(timedelta(milliseconds=int(req["millis"])))
    after = await ctx.run("after", lambda: _stamp(req["id"], "after"))
    return {
        "before": before["at"],
        "after": after["at"],
        "nonces": [before["nonce"], after["nonce"]],
    }


caller = restate.Service("Caller")


@caller.handler(name="run")
async def call_then_run(ctx: Context, req: dict[str, Any]) -> dict[str, Any]:
    """Calls Tally/{key}/add (request id ``<id>-callee``), then journals one step of its own."""
    callee = {"id": f"{req['id']}-callee", "delta": req["delta"], "holdMillis": 50}
    answer = await ctx.object_call(add, key=req["key"], arg=callee)
    nonce = await ctx.run("after-call", lambda: record(req["id"], "after-call"))
    return {"callee": answer, "nonces": [nonce]}


flow = restate.Workflow("Flow")


@flow.main(name="run")
async def flow_run(ctx: WorkflowContext, req: dict[str, Any]) -> list[str]:
    """A workflow run: two journaled steps around a durable sleep (runs once per key)."""
    first = await ctx.run("prepare", lambda: record(req["id"], "prepare"))
    await ctx.sleep(timedelta(milliseconds=int(req["pauseMillis"])))
    second = await ctx.run("finish", lambda: record(req["id"], "finish"))
    return [first, second]


SERVICES = [chain, tally, napper, caller, flow]


def main() -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--identity-key", action="append", default=[])
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.h2_max_concurrent_streams = 2**31 - 1
    config.keep_alive_timeout = 3600
    config.accesslog = None
    app = restate.app(SERVICES, identity_keys=args.identity_key or None)
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
