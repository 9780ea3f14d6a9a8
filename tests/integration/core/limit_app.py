"""A deployment for the invoker concurrency-limit tests.

Deployment (Perdure SDK): ``python -m tests.integration.core.limit_app --port N``

- ``Gauge/hold {"id", "gate"}``: appends ``start <id> <open>`` to the file named by env
  ``GAUGE_LOG`` (``open``: how many `hold` handlers run at this moment, this one included),
  then, if ``gate`` names a file, waits until that file exists; appends ``end <id>`` and
  answers ``id``. The attempt's stream stays open all the while, so ``open`` counts the
  attempts open at the deployment.

"""

from __future__ import annotations

import argparse
import asyncio
import os
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    perdure.serve([gauge], port=parser.parse_args().port)
