"""The SQLite store's copy of committed invocation rows never disagrees with the file.

The write transaction answers `get_invocation` from memory when it can and writes a known row
back with a narrow UPDATE; every check below compares what the transaction sees with what a
fresh connection to the file reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perdure.server.storage import sqlite as sqlite_module
from perdure.server.storage.api import InvocationRow, InvocationStatus, Outcome
from perdure.server.storage.sqlite import SqliteStorage
from perdure.testing._storage_fixtures import minimal_invocation

S = InvocationStatus


def _on_disk(db_path: Path, invocation_id: str) -> InvocationRow | None:
    """The row as a new process would read it."""
    other = SqliteStorage(db_path)
    try:
        return other.reader().get_invocation(invocation_id)
    finally:
        other.close()


def _commit(store: SqliteStorage, *rows: InvocationRow) -> None:
    tx = store.begin()
    for row in rows:
        tx.put_invocation(row)
    tx.commit()


def _get(store: SqliteStorage, invocation_id: str) -> InvocationRow | None:
    tx = store.begin()
    try:
        return tx.get_invocation(invocation_id)
    finally:
        tx.rollback()


def test_updates_and_status_changes_reach_the_file_and_the_active_index(
    store: SqliteStorage, db_path: Path
) -> None:
    row = minimal_invocation("inv-1", status=S.RUNNING, journal_length=1)
    _commit(store, row)
    for step in range(2, 5):  # same status: the narrow UPDATE
        row.journal_length = step
        row.modified_at = step
        _commit(store, row)
        assert _on_disk(db_path, "inv-1") == row
    assert [r.id for r in store.reader().list_active_invocations()] == ["inv-1"]
    row.status = S.COMPLETED
    row.outcome = Outcome(value=b"42")
    _commit(store, row)
    assert _on_disk(db_path, "inv-1") == row
    assert store.reader().list_active_invocations() == []
    assert _get(store, "inv-1") == row


def test_a_returned_row_is_a_copy(store: SqliteStorage) -> None:
    _commit(store, minimal_invocation("inv-1"))
    tx = store.begin()
    first = tx.get_invocation("inv-1")
    assert first is not None
    first.journal_length = 99  # changed but never written back
    again = tx.get_invocation("inv-1")
    assert again is not None and again.journal_length == 0
    tx.rollback()


def test_rollback_to_a_savepoint_and_a_rollback_undo_the_cached_rows(
    store: SqliteStorage, db_path: Path
) -> None:
    committed = minimal_invocation("inv-1", journal_length=1)
    _commit(store, committed)
    tx = store.begin()
    tx.put_invocation(minimal_invocation("inv-1", journal_length=2))
    tx.savepoint()
    tx.put_invocation(minimal_invocation("inv-1", journal_length=3, status=S.RUNNING))
    tx.put_invocation(minimal_invocation("inv-2"))
    tx.delete_invocation("inv-1")
    assert tx.get_invocation("inv-1") is None
    tx.rollback_to_savepoint()
    tx.release_savepoint()
    kept = tx.get_invocation("inv-1")
    assert kept is not None and kept.journal_length == 2 and kept.status is S.READY
    assert tx.get_invocation("inv-2") is None
    tx.rollback()
    assert _get(store, "inv-1") == committed == _on_disk(db_path, "inv-1")
    assert _get(store, "inv-2") is None


def test_a_deleted_id_written_again_is_a_new_row(store: SqliteStorage, db_path: Path) -> None:
    _commit(store, minimal_invocation("inv-1", created_at=1, status=S.COMPLETED))
    tx = store.begin()
    tx.delete_invocation("inv-1")
    tx.put_invocation(minimal_invocation("inv-1", created_at=50))
    tx.commit()
    again = _on_disk(db_path, "inv-1")
    assert again is not None and again.created_at == 50 and again.status is S.READY
    assert _get(store, "inv-1") == again


def test_rows_evicted_from_memory_are_read_from_the_file(
    store: SqliteStorage, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "ROW_CACHE", 4)
    rows = [minimal_invocation(f"inv-{i}", journal_length=i) for i in range(10)]
    _commit(store, *rows)
    assert len(store._rows) == 4
    for row in rows:
        row.status = S.RUNNING
        row.modified_at = 7
    _commit(store, *rows)  # some known, some not: the upsert covers the rest
    for row in rows:
        assert _get(store, row.id) == row == _on_disk(db_path, row.id)


def test_a_row_changed_behind_the_cache_is_still_written(
    store: SqliteStorage, db_path: Path
) -> None:
    # Cannot happen inside Perdure (every write goes through the transaction); if it did,
    # the UPDATE finds no row and the full upsert writes it anyway.
    _commit(store, minimal_invocation("inv-1"))
    store._writer.execute("DELETE FROM invocations WHERE id = 'inv-1'")
    _commit(store, minimal_invocation("inv-1", journal_length=5))
    again = _on_disk(db_path, "inv-1")
    assert again is not None and again.journal_length == 5
