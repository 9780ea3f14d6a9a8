"""open_storage picks the backend and the file from a URL or a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from perdure.server.storage import open_storage, resolve_sqlite_path
from perdure.server.storage.api import StorageError
from perdure.server.storage.memory import MemoryStorage
from perdure.server.storage.sqlite import SqliteStorage


def test_memory_url_opens_an_in_memory_store() -> None:
    store = open_storage("memory:")
    store.close()
    assert isinstance(store, MemoryStorage)


def test_sqlite_url_with_an_absolute_path(tmp_path: Path) -> None:
    store = open_storage(f"sqlite://{tmp_path}/sub/perdure.db")
    store.close()
    assert isinstance(store, SqliteStorage)
    assert store.path == str(tmp_path / "sub" / "perdure.db")
    assert (tmp_path / "sub" / "perdure.db").is_file()


def test_a_directory_holds_perdure_db(tmp_path: Path) -> None:
    store = open_storage(tmp_path)
    store.close()
    assert isinstance(store, SqliteStorage)
    assert store.path == str(tmp_path / "perdure.db")


def test_a_new_directory_is_created(tmp_path: Path) -> None:
    store = open_storage(str(tmp_path / "perdure-data"))
    store.close()
    assert (tmp_path / "perdure-data" / "perdure.db").is_file()


def test_a_path_to_a_db_file_is_that_file(tmp_path: Path) -> None:
    assert resolve_sqlite_path(tmp_path / "state.db") == tmp_path / "state.db"
    assert resolve_sqlite_path(f"sqlite:{tmp_path}/x.sqlite3") == tmp_path / "x.sqlite3"
    assert resolve_sqlite_path("sqlite://rel/y.db") == Path("rel/y.db")


def test_an_unknown_scheme_names_the_ones_that_work() -> None:
    with pytest.raises(StorageError, match="memory:"):
        open_storage("postgres://localhost/perdure")


def test_an_empty_sqlite_url_is_refused() -> None:
    with pytest.raises(StorageError, match="names no file"):
        open_storage("sqlite:")


def test_an_unwritable_data_directory_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot create the data directory"):
        open_storage(blocker / "data")
