"""What only the SQLite backend does: durability settings, schema versions, clear errors."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from importlib import resources
from pathlib import Path

import pytest

from perdure.server.storage import migrations
from perdure.server.storage.api import StorageError, TimerKind, TimerRow
from perdure.server.storage.sqlite import APPLICATION_ID, SqliteStorage
from perdure.testing._storage_fixtures import minimal_invocation, populate, write


def _raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def test_both_connections_use_wal_full_sync_and_a_busy_timeout(store: SqliteStorage) -> None:
    for conn in (store._writer, store._reader_conn):
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert store._reader_conn.execute("PRAGMA query_only").fetchone() == (1,)


def test_a_new_file_gets_the_latest_schema(db_path: Path, store: SqliteStorage) -> None:
    assert store.schema_version == migrations.latest_version("sqlite") >= 1
    with _raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (store.schema_version,)
        assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)


def test_reopening_does_not_migrate_again(db_path: Path) -> None:
    SqliteStorage(db_path).close()
    again = SqliteStorage(db_path)
    again.close()
    assert again.schema_version == migrations.latest_version("sqlite")


def test_migrations_ship_as_package_data() -> None:
    sql_files = [
        entry.name
        for entry in resources.files("perdure.server.storage.migrations")
        .joinpath("sqlite")
        .iterdir()
        if entry.name.endswith(".sql")
    ]
    assert "0001_init.sql" in sql_files
    first = migrations.load("sqlite")[0]
    assert (first.version, first.name) == (1, "init")
    assert "CREATE TABLE invocations" in first.sql


def test_a_schema_newer_than_the_code_is_refused(db_path: Path) -> None:
    SqliteStorage(db_path).close()
    newer = migrations.latest_version("sqlite") + 1
    with _raw(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {newer}")
    with pytest.raises(StorageError, match="newer Perdure") as caught:
        SqliteStorage(db_path)
    assert str(db_path) in str(caught.value)
    assert "Upgrade Perdure" in str(caught.value)


def test_a_file_that_is_not_sqlite_is_refused_with_the_fix(db_path: Path) -> None:
    db_path.write_bytes(b"this is a text file, not a database\n" * 200)
    with pytest.raises(StorageError, match="not a SQLite database") as caught:
        SqliteStorage(db_path)
    assert str(db_path) in str(caught.value)
    assert "restore it from a backup" in str(caught.value)


def test_another_programs_database_is_left_untouched(db_path: Path) -> None:
    with _raw(db_path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(StorageError, match="not Perdure's") as caught:
        SqliteStorage(db_path)
    assert str(db_path) in str(caught.value)
    with _raw(db_path) as conn:
        tables = conn.execute("SELECT name FROM sqlite_schema").fetchall()
    assert tables == [("users",)]


def test_a_full_disk_rolls_the_batch_back_and_says_so(store: SqliteStorage) -> None:
    write(store, lambda tx: populate(tx, "kept"))
    pages = store._writer.execute("PRAGMA page_count").fetchone()[0]
    # max_page_count makes SQLite report SQLITE_FULL exactly as a full disk would.
    store._writer.execute(f"PRAGMA max_page_count = {pages + 8}")
    tx = store.begin()
    tx.put_invocation(minimal_invocation("lost"))
    with pytest.raises(StorageError, match="is full: free some space") as caught:
        for n in range(100):
            tx.set_state("Obj", "k", str(n).encode(), b"x" * 8_000)
    assert "No data was lost" in str(caught.value)
    assert store.path in str(caught.value)
    tx.rollback()  # already rolled back: a no-op
    store._writer.execute("PRAGMA max_page_count = 1073741823")
    assert store.reader().get_invocation("lost") is None
    assert store.reader().get_lock("Obj", "kept") == "inv-kept"
    write(store, lambda tx: tx.put_invocation(minimal_invocation("after")))
    assert store.reader().get_invocation("after") is not None


def test_a_file_locked_by_another_process_says_who_to_stop(db_path: Path) -> None:
    store = SqliteStorage(db_path, busy_timeout_s=0.05)
    try:
        with _raw(db_path) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageError, match="locked by another process") as caught:
                store.begin()
            assert "second Perdure server" in str(caught.value)
            other.execute("ROLLBACK")
        write(store, lambda tx: populate(tx, "a"))  # free again: works
    finally:
        store.close()


def test_reads_do_not_wait_for_an_open_write_transaction(store: SqliteStorage) -> None:
    write(store, lambda tx: populate(tx, "a"))
    tx = store.begin()
    populate(tx, "b")
    assert store.reader().get_lock("Obj", "a") == "inv-a"
    assert store.reader().get_lock("Obj", "b") is None
    tx.commit()
    assert store.reader().get_lock("Obj", "b") == "inv-b"


def test_the_reader_never_pins_the_wal(store: SqliteStorage) -> None:
    """Each read finishes its statement, so a checkpoint can always empty the WAL."""
    write(store, *[lambda tx, n=n: populate(tx, str(n)) for n in range(20)])
    reader = store.reader()
    reader.list_active_invocations()
    reader.get_invocation("inv-3")
    reader.read_journal("inv-3")
    reader.list_timers()
    busy, wal_frames, checkpointed = store._writer.execute(
        "PRAGMA wal_checkpoint(TRUNCATE)"
    ).fetchone()
    assert (busy, wal_frames, checkpointed) == (0, 0, 0)  # TRUNCATE leaves an empty WAL


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("SELECT * FROM invocations WHERE status <> 'completed' ORDER BY created_at, id",
         "invocations_active"),
        ("SELECT * FROM timers ORDER BY fire_at, id", "timers_by_fire_at"),
        ("SELECT * FROM invocations ORDER BY created_at DESC, id DESC LIMIT 5",
         "invocations_by_created"),
        ("SELECT * FROM invocations WHERE service = 'A' ORDER BY created_at DESC, id DESC LIMIT 5",
         "invocations_by_service"),
    ],
)  # fmt: skip
def test_startup_and_admin_queries_use_their_index(
    store: SqliteStorage, query: str, index: str
) -> None:
    plan = " ".join(r[-1] for r in store._writer.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert index in plan, plan


def test_integrity_check_reports_a_sound_file(store: SqliteStorage) -> None:
    write(store, lambda tx: populate(tx, "a"))
    assert store.check_integrity() == []


def test_large_values_round_trip(store: SqliteStorage) -> None:
    big = bytes(range(256)) * 40_000  # 10 MiB: overflow pages, not one row per page
    timer = TimerRow("sleep:x:1", 2**63 - 1, "x", TimerKind.SLEEP, 2**63 - 1)
    write(
        store,
        lambda tx: tx.set_state("Obj", "k", b"big", big),
        lambda tx: tx.put_timer(timer),
    )
    assert store.reader().get_state("Obj", "k", b"big") == big
    assert store.reader().list_timers() == [timer]
