"""The phase table: total, reachable, and the VM package free of I/O, clocks and randomness."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from perdure.sdk import vm as vm_package
from perdure.sdk.vm.machine import TRANSITIONS, Event, IllegalTransition, Phase, transition

FORBIDDEN = {"asyncio", "socket", "time", "random", "threading", "os", "datetime", "uuid"}


@pytest.mark.parametrize(("phase", "event"), list(itertools.product(Phase, Event)))
def test_every_pair_either_transitions_or_is_illegal(phase: Phase, event: Event) -> None:
    try:
        assert transition(phase, event) in Phase
    except IllegalTransition as exc:
        assert (phase, event) not in TRANSITIONS
        assert exc.phase is phase and exc.event is event


def test_every_phase_is_reachable_from_waiting_start() -> None:
    reached = {Phase.WAITING_START}
    frontier = [Phase.WAITING_START]
    while frontier:
        phase = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is phase and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Phase)


def test_closed_is_only_left_for_closed() -> None:
    assert {t for (s, _), t in TRANSITIONS.items() if s is Phase.CLOSED} == {Phase.CLOSED}


def test_the_vm_imports_no_io_clock_or_randomness() -> None:
    root = Path(vm_package.__file__).parent
    for module in root.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{module.name} imports {name}"


def test_the_docstring_examples_of_the_vm_run() -> None:
    import doctest
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(vm_package.__path__):
        module = importlib.import_module(f"{vm_package.__name__}.{info.name}")
        assert doctest.testmod(module).failed == 0, module.__name__
