"""Fixtures shared by the SQLite storage tests: a database path and a store opened on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from perdure.server.storage.sqlite import SqliteStorage


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "perdure.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStorage]:
    opened = SqliteStorage(db_path)
    try:
        yield opened
    finally:
        opened.close()
