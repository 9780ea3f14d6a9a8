"""Calls and sends to a handler function are typed: mypy checks the input, types the output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.processes import ROOT

PROGRAM = '''
import perdure

greeter = perdure.Service("Greeter")
counter = perdure.VirtualObject("Counter")


@greeter.handler()
async def greet(ctx: perdure.Context, name: str) -> str:
    return name


@counter.handler()
async def add(ctx: perdure.ObjectContext, delta: int) -> int:
    return delta


@counter.shared()
async def get(ctx: perdure.ObjectSharedContext) -> int:
    return 0


async def caller(ctx: perdure.Context) -> None:
    reveal_type(ctx.service_call(greet, "Ada"))
    reveal_type(ctx.object_call(add, "k", 1))
    reveal_type(ctx.object_call(get, "k"))
    reveal_type(ctx.service_call("Greeter/greet", "Ada"))
    ctx.service_send(greet, "Ada")
    ctx.object_send(add, "k", 2)
    ctx.service_call(greet, 42)  # error 1
    ctx.object_call(add, "k", "one")  # error 2
    ctx.service_send(greet, 3)  # error 3
'''


def test_mypy_sees_the_types_of_calls_to_handler_functions(tmp_path: Path) -> None:
    program = tmp_path / "typed_calls.py"
    program.write_text(PROGRAM)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(program),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if "No module named mypy" in result.stderr:
        pytest.skip("mypy is not installed")
    lines = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if ": " in line]
    revealed = [line for line in lines if line.startswith("note: Revealed type")]
    assert revealed == [
        'note: Revealed type is "perdure.sdk.futures.CallFuture[str]"',
        'note: Revealed type is "perdure.sdk.futures.CallFuture[int]"',
        'note: Revealed type is "perdure.sdk.futures.CallFuture[int]"',
        'note: Revealed type is "perdure.sdk.futures.CallFuture[Any]"',
    ], result.stdout
    expected_errors = [
        str(number) for number, line in enumerate(PROGRAM.splitlines(), 1) if "# error" in line
    ]
    errors = [line for line in result.stdout.splitlines() if "error:" in line]
    assert [e.split(":")[1] for e in errors] == expected_errors, result.stdout
    assert all("[arg-type]" in e for e in errors)
