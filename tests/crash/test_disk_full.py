"""A disk that fills up under a running server, then gets space back.

A size-limited filesystem is not available to a test, so the disk fills the way SQLite sees a
full disk: ``PRAGMA max_page_count`` on the server's write connection stops the database from
growing, and every write that needs a new page fails with SQLITE_FULL. The server must refuse
new work with a clear 503 (nothing accepted, retry later), stay up, lose nothing it had
accepted, and carry on once the space is back; the database passes an integrity check.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.helpers.processes import ServiceProcess

from perdure.server.app import PerdureServer
from perdure.server.config import load
from perdure.server.storage.sqlite import SqliteStorage

pytestmark = [pytest.mark.crash, pytest.mark.interop]

NO_LIMIT = 2**30


class Running:
    def __init__(self, server: PerdureServer, storage: SqliteStorage) -> None:
        self.server, self.storage = server, storage
        assert server.bound is not None
        self.ingress = "http://{}:{}".format(*server.bound.ingress)
        self.admin = "http://{}:{}".format(*server.bound.admin)

    def limit_pages(self, pages: int) -> None:
        # The driver's thread may be committing: the connection is serialised by SQLite, and
        # max_page_count is not part of any transaction.
        self.storage._writer.execute(f"PRAGMA max_page_count = {pages}")

    def page_count(self) -> int:
        return int(self.storage._writer.execute("PRAGMA page_count").fetchone()[0])


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    service = ServiceProcess(
        "tests.services.crash_app", tmp_path / "service.log", env={"LEDGER": str(tmp_path / "l")}
    )
    await asyncio.to_thread(service.start)
    storage = SqliteStorage(tmp_path / "data" / "perdure.db") if _mkdir(tmp_path / "data") else None
    assert storage is not None
    config = load(
        {
            "ingress_bind": "127.0.0.1:0",
            "admin_bind": "127.0.0.1:0",
            "data_dir": str(tmp_path / "data"),
            "retry_initial_interval_ms": "50ms",
            "retry_max_interval_ms": "300ms",
            "log_level": "warning",
        },
        env={},
    )
    server = PerdureServer(config, storage=storage)
    ready = asyncio.Event()
    task = asyncio.create_task(server.run(lambda _bound: ready.set()))
    await asyncio.wait_for(ready.wait(), timeout=30)
    try:
        r = await _client().post(
            "http://{}:{}/deployments".format(*server.bound.admin),  # type: ignore[union-attr]
            json={"uri": service.uri},
        )
        assert r.status_code in (200, 201), r.text
        yield Running(server, storage)
    finally:
        server.stop()
        await task
        await asyncio.to_thread(service.stop)
    check = sqlite3.connect(tmp_path / "data" / "perdure.db")
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.close()


def _mkdir(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return True


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=30)


async def test_a_full_disk_refuses_new_work_clearly_and_recovers(running: Running) -> None:
    async with _client() as client:
        first = await client.post(
            f"{running.ingress}/Chain/run/send",
            json={"id": "before-full", "steps": 3, "pauseMillis": 300},
        )
        assert first.status_code == 202, first.text
        running_id = first.json()["invocationId"]

        running.limit_pages(running.page_count())
        accepted, refused = [], None
        for n in range(300):  # until a send needs a page the disk does not have
            r = await client.post(
                f"{running.ingress}/Chain/run/send",
                json={"id": f"filling-{n}", "steps": 1, "pauseMillis": 1},
            )
            if r.status_code == 202:
                accepted.append(r.json()["invocationId"])
                continue
            refused = r
            break
        assert refused is not None, "the database never filled up"
        assert refused.status_code == 503, refused.text
        assert "full" in refused.text.lower() and "retry" in refused.text.lower(), refused.text

        # Still up while full: health answers and reads work.
        assert (await client.get(f"{running.ingress}/restate/health")).status_code == 200
        assert (await client.get(f"{running.admin}/invocations/{running_id}")).status_code == 200

        await asyncio.sleep(1.0)  # attempts that ran meanwhile failed to store, and wait to retry
        running.limit_pages(NO_LIMIT)

        after = await client.post(
            f"{running.ingress}/Chain/run/send",
            json={"id": "after-full", "steps": 1, "pauseMillis": 1},
        )
        assert after.status_code == 202, after.text
        for invocation_id in [running_id, *accepted, after.json()["invocationId"]]:
            try:
                r = await client.get(
                    f"{running.ingress}/restate/invocation/{invocation_id}/attach", timeout=20
                )
            except httpx.ReadTimeout:
                detail = await client.get(f"{running.admin}/invocations/{invocation_id}")
                raise AssertionError(f"{invocation_id} never completed: {detail.text}") from None
            assert r.status_code == 200, (invocation_id, r.text)
        # The invocation that ran through the full disk journaled each step once.
        r = await client.get(f"{running.ingress}/restate/invocation/{running_id}/output")
        assert len(r.json()) == 3
