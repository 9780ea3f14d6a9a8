"""Perdure server storage: the contract (api.py), its backends, and `open_storage` to pick one."""

from __future__ import annotations

from pathlib import Path

from perdure.server.storage.api import Storage, StorageError

# The file a data directory holds.
DATABASE_FILE = "perdure.db"
# A path that does not exist yet names a database file if it ends so, and a directory otherwise.
_FILE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def resolve_sqlite_path(url_or_path: str | Path) -> Path:
    """The database file `open_storage` would open for `url_or_path` (a sqlite: URL or a path).

    `sqlite:///abs/perdure.db` and `sqlite:relative.db` name a file; a directory (existing, or
    a new path without a .db/.sqlite/.sqlite3 suffix) means `<dir>/perdure.db`.
    """
    text = str(url_or_path)
    if text.startswith("sqlite:"):
        text = text.removeprefix("sqlite:")
        # sqlite:///abs/path keeps its leading slash; sqlite://rel/path is taken as relative.
        text = text.removeprefix("//")
        if not text:
            raise StorageError("the storage URL 'sqlite:' names no file; use sqlite:///path/to.db")
    path = Path(text).expanduser()
    if path.is_dir() or (not path.exists() and path.suffix not in _FILE_SUFFIXES):
        return path / DATABASE_FILE
    return path


def open_storage(url_or_path: str | Path) -> Storage:
    """Opens (creating and migrating as needed) the store named by `url_or_path`.

    - `memory:` — an in-memory store, gone when the process ends (tests, quick experiments);
    - `sqlite:///path/perdure.db` or a path to a `.db` file — that SQLite file;
    - a directory — `<dir>/perdure.db`, creating the directory if needed.

    >>> store = open_storage("memory:")
    >>> store.close()
    """
    text = str(url_or_path)
    if text == "memory:":
        from perdure.server.storage.memory import MemoryStorage

        return MemoryStorage()
    scheme, colon, _ = text.partition(":")
    if colon and scheme != "sqlite" and len(scheme) > 1 and "/" not in scheme:
        raise StorageError(
            f"unknown storage URL {text!r}: use sqlite:///path/to/perdure.db, a directory "
            f"path, or memory:"
        )
    # Imported here so that importing the contract (api.py) never loads sqlite3.
    from perdure.server.storage.sqlite import SqliteStorage

    path = resolve_sqlite_path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the data directory {path.parent} ({exc.strerror}): create it "
            f"yourself or choose a directory Perdure may write to"
        ) from exc
    return SqliteStorage(path)
