"""Every backend passes the public storage conformance suite, one test per check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from perdure.server.storage.api import Storage
from perdure.server.storage.memory import MemoryStorage
from perdure.server.storage.sqlite import SqliteStorage
from perdure.testing.storage_conformance import CHECKS, REOPEN_CHECKS, check_storage

MakeStorage = Callable[[], Storage]


def _sqlite_maker(tmp_path: Path) -> MakeStorage:
    counter = iter(range(1_000_000))
    return lambda: SqliteStorage(tmp_path / f"store{next(counter)}.db")


def _sqlite_reopen(store: Storage) -> Storage:
    assert isinstance(store, SqliteStorage)
    store.close()
    return SqliteStorage(store.path)


@pytest.fixture(params=["memory", "sqlite"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStorage:
    if request.param == "memory":
        return MemoryStorage
    return _sqlite_maker(tmp_path)


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
def test_backend_passes(make_storage: MakeStorage, check: Callable[[MakeStorage], None]) -> None:
    check(make_storage)


@pytest.mark.parametrize(
    "check", REOPEN_CHECKS, ids=[c.__name__.removeprefix("check_") for c in REOPEN_CHECKS]
)
def test_sqlite_passes_reopen_check(
    tmp_path: Path, check: Callable[[MakeStorage, Callable[[Storage], Storage]], None]
) -> None:
    check(_sqlite_maker(tmp_path), _sqlite_reopen)


def test_check_storage_runs_the_whole_suite(tmp_path: Path) -> None:
    check_storage(MemoryStorage)
    check_storage(_sqlite_maker(tmp_path), _sqlite_reopen)
