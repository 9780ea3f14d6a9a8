"""Turns sqlite3 errors into StorageError messages that say what happened and what to do."""

from __future__ import annotations

import sqlite3

from perdure.server.storage.api import StorageError

# What a failed write transaction means for the caller, appended to the message.
ROLLED_BACK = (
    "No data was lost: the transaction was rolled back, so nothing of its batch was stored."
)


def describe(exc: sqlite3.Error, path: str) -> str:
    """One sentence naming the cause and the fix, from SQLite's primary result code."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary == sqlite3.SQLITE_FULL:
        return f"The disk holding {path} is full: free some space, then retry."
    if primary == sqlite3.SQLITE_IOERR:
        return (
            f"The disk reported an I/O error on {path} ({exc}): check the disk and the file "
            f"system (dmesg, SMART), then restart Perdure."
        )
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return (
            f"{path} is locked by another process ({exc}). Is a second Perdure server using the "
            f"same data directory? Stop it, or give each server its own directory."
        )
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return (
            f"{path} is corrupt or is not a SQLite database ({exc}). Move it aside and restore "
            f"it from a backup, or point Perdure at a new, empty data directory."
        )
    if primary == sqlite3.SQLITE_READONLY:
        return (
            f"{path} is read-only ({exc}): give the Perdure process write permission on the "
            f"file and on its directory (SQLite writes -wal and -shm files beside it)."
        )
    if primary == sqlite3.SQLITE_CANTOPEN:
        return (
            f"Cannot open {path} ({exc}): check that its directory exists and that Perdure "
            f"may write there."
        )
    if primary == sqlite3.SQLITE_CONSTRAINT:
        return (
            f"A write to {path} broke a uniqueness rule ({exc}); this is a bug in Perdure, "
            f"please report it with the server log."
        )
    return f"SQLite failed on {path}: {exc}."


def storage_error(exc: sqlite3.Error, path: str, *, rolled_back: bool = False) -> StorageError:
    message = describe(exc, path)
    return StorageError(f"{message} {ROLLED_BACK}" if rolled_back else message)
