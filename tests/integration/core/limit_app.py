"""A deployment and a server launcher for the invoker concurrency-limit tests.

Deployment (Perdure SDK): ``python -m tests.integration.core.limit_app --port N``

- ``Gauge/hold {"id", "gate"}``: appends ``start <id> <open>`` to the file named by env
  ``GAUGE_LOG`` (``open``: how many `hold` handlers run at this moment, this one included),
  then, if ``gate`` names a file, waits until that file exists; appends ``end <id>`` and
  answers ``id``. The attempt's stream stays open all the while, so ``open`` counts the
  attempts open at the deployment.

Server: ``python -m tests.integration.core.limit_app server --limit N <perdure server args>``
runs `perdure server` with `PerdureServer(invoker_concurrency_limit=N)` (until the CLI has its
own flag for it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import perdure

gauge = perdure.Service("Gauge")
_open = 0


def _log(line: str) -> None:
    with open(os.environ["GAUGE_LOG"], "a") as out:
        out.write(line + "\n")


@gauge.handler()
async def hold(ctx: perdure.Context, req: dict[str, Any]) -> str:
    global _open
    _open += 1
    try:
        _log(f"start {req['id']} {_open}")
        gate = req.get("gate")
        while gate and not Path(gate).exists():
            await asyncio.sleep(0.02)
        _log(f"end {req['id']}")
    finally:
        _open -= 1
    return str(req["id"])


def _server(argv: list[str]) -> None:
    limit, rest = int(argv[1]), argv[2:]
    assert argv[0] == "--limit"
    from perdure.cli.main import main
    from perdure.server import app

    original = app.PerdureServer.__init__

    def limited(self: app.PerdureServer, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("invoker_concurrency_limit", limit)
        original(self, *args, **kwargs)

    app.PerdureServer.__init__ = limited  # type: ignore[method-assign]
    sys.exit(main(["server", *rest]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["server"]:
        _server(sys.argv[2:])
    else:
        parser = argparse.ArgumentParser()
        parser.add_argument("--port", type=int, required=True)
        perdure.serve([gauge], port=parser.parse_args().port)
