"""Where a Python server spends its CPU: py-spy samples, folded into top-N tables.

`record()` samples a running process with py-spy (non-blocking, idle samples dropped) while
something else loads it; `hot_spots()` reads py-spy's raw (collapsed) output and ranks functions
by self time (the leaf of a sample) and by inclusive time (anywhere on the stack).

Example::

    path = record(pid, seconds=10, out=work / "profile.txt")
    top = hot_spots(path.read_text(), limit=20)
    print(top["self"][0])   # {"function": "select (selectors.py)", "percent": 12.3}
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")


def py_spy() -> str:
    return str(Path(sys.executable).with_name("py-spy"))


def record(pid: int, *, seconds: int, out: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """Start py-spy on ``pid`` for ``seconds``; the caller loads the process, then waits."""
    cmd = [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(rate),
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frame(text: str) -> str:
    """'run (asyncio/events.py:84)' -> 'run (asyncio/events.py)': rank functions, not lines."""
    text = _LINE.sub(")", text.strip())
    return re.sub(r"\(/[^)]*/(site-packages|src|lib/python3\.\d+)/", "(", text)


# Where a sample of the Perdure server belongs, by the first of these found on its stack
# (checked in order: the commit thread first, then the most specific part of the pipeline).
COMPONENTS = (
    (
        "commit thread (COMMIT + fsync, off the event loop)",
        ("_commit_loop (perdure/server/driver.py", "_worker (concurrent/futures"),
    ),
    ("storage SQL inside the partition (event loop)", ("perdure/server/storage/",)),
    ("partition logic (event loop)", ("perdure/server/partition/",)),
    ("driver (batching, savepoints, dispatch)", ("perdure/server/driver.py",)),
    ("invoker: HTTP/2 client to the deployment", ("perdure/server/invoker/",)),
    (
        "ingress: HTTP/1.1 server (uvicorn + ingress app)",
        ("uvicorn/", "perdure/server/ingress/", "perdure/server/asgi.py"),
    ),
    ("event loop itself (uvloop, socket I/O, callbacks)", ("",)),
)


def components(collapsed: str) -> list[dict[str, Any]]:
    """Share of all samples per part of the server (see COMPONENTS).

    >>> components("a (perdure/server/driver.py:1);b (perdure/server/storage/sqlite.py:2) 3\\n"
    ...            "Runner.run (asyncio/runners.py:1) 1\\n")[1]
    {'component': 'storage SQL inside the partition (event loop)', 'percent': 75.0}
    """
    counts = {name: 0 for name, _ in COMPONENTS}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        total += int(count_text)
        for name, needles in COMPONENTS:
            if any(needle in stack for needle in needles):
                counts[name] += int(count_text)
                break
    return [
        {"component": name, "percent": round(100 * n / max(total, 1), 1)}
        for name, n in counts.items()
    ]


def hot_spots(collapsed: str, *, limit: int = 25) -> dict[str, Any]:
    """Rank functions by self and inclusive share of the samples in py-spy's raw output.

    >>> top = hot_spots("main (a.py:1);f (a.py:2) 3\\nmain (a.py:1);g (a.py:3) 1\\n")
    >>> top["samples"], top["self"][0], top["inclusive"][0]["percent"]  # doctest: +ELLIPSIS
    (4, {'function': 'f (a.py)', 'percent': 75.0}, 100.0)
    """
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for f in set(frames):
            anywhere[f] += count

    def ranked(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": f, "percent": round(100 * n / total, 1)}
            for f, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "self": ranked(own),
        "inclusive": ranked(anywhere),
        "components": components(collapsed),
    }
