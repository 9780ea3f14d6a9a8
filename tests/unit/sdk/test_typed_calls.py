"""The context API under mypy: calls and sends to a handler function check the input and type
the output; ``type_hint=`` types state, promises and awakeables; the examples type-check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.processes import ROOT

PROGRAM = """
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


async def reader(ctx: perdure.WorkflowContext) -> None:
    reveal_type(ctx.get("n", type_hint=int))
    reveal_type(ctx.promise("p", type_hint=list[str]))
    reveal_type(ctx.awakeable(type_hint=bool)[1])
    reveal_type(ctx.get("n"))


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
"""


def mypy(tmp_path: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
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
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if "No module named mypy" in result.stderr:
        pytest.skip("mypy is not installed")
    return result


def test_mypy_sees_the_types_of_calls_to_handler_functions(tmp_path: Path) -> None:
    program = tmp_path / "typed_calls.py"
    program.write_text(PROGRAM)
    result = mypy(tmp_path, program)
    lines = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if ": " in line]
    revealed = [line for line in lines if line.startswith("note: Revealed type")]
    assert revealed == [
        'note: Revealed type is "perdure.sdk.futures.DurableFuture[int | None]"',
        'note: Revealed type is "perdure.sdk.futures.DurablePromise[list[str]]"',
        'note: Revealed type is "perdure.sdk.futures.DurableFuture[bool]"',
        'note: Revealed type is "perdure.sdk.futures.DurableFuture[Any]"',
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


def test_the_examples_type_check(tmp_path: Path) -> None:
    result = mypy(tmp_path, *sorted((ROOT / "examples").glob("*.py")))
    assert [line for line in result.stdout.splitlines() if "error:" in line] == []
