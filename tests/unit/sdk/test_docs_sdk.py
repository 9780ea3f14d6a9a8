"""docs/sdk.md runs: its ``python`` blocks, in order, as one program (each with its asserts).

A block preceded by ``<!-- not run -->`` is shown only. The program gets a module of its own,
so dataclasses and type hints defined in the page resolve as in a real file.
"""

from __future__ import annotations

import re
import sys
import types

import pytest
from tests.helpers.processes import ROOT

PAGE = ROOT / "docs" / "sdk.md"
BLOCK = re.compile(r"(<!-- not run -->\s*)?```python\n(.*?)```", re.S)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of each block to run."""
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(2))
        for match in BLOCK.finditer(text)
        if not match.group(1)
    ]


def test_the_sdk_page_runs_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    text = PAGE.read_text()
    blocks = python_blocks(text)
    assert len(blocks) >= 10, "the page lost its examples"
    module = types.ModuleType("perdure_docs_sdk")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for line, code in blocks:
        compiled = compile(code, f"{PAGE}:{line}", "exec")
        exec(compiled, module.__dict__)  # the page's own examples
