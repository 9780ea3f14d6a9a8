"""A small real engine for admin tests: memory storage, the partition, the driver, no invoker.

Deployments registered through the admin app go through the real events and rules, and the
registry is reloaded on `RegistryChanged`, as `perdure server` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from perdure.server.admin.app import AdminApp
from perdure.server.config import Config
from perdure.server.driver import Driver
from perdure.server.ids import RandomIds
from perdure.server.partition import Partition
from perdure.server.partition.effects import Effect, RegistryChanged
from perdure.server.registry import Registry
from perdure.server.storage.memory import MemoryStorage


@dataclass
class Engine:
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    registry: Registry = field(default_factory=Registry)
    effects: list[Effect] = field(default_factory=list)

    def reload(self) -> None:
        reader = self.storage.reader()
        self.registry = Registry(reader.list_deployments(), reader.list_services())

    def sink(self, effects: list[Effect]) -> None:
        self.effects.extend(effects)
        if any(isinstance(e, RegistryChanged) for e in effects):
            self.reload()


@contextlib.asynccontextmanager
async def admin_client(
    config: Config | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, Engine]]:
    engine = Engine()
    partition = Partition(lambda: engine.registry, RandomIds())
    driver = Driver(engine.storage, partition, engine.sink)
    app = AdminApp(driver, lambda: engine.registry, engine.storage, config or Config())
    runner = asyncio.create_task(driver.run())
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            yield client, engine
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await app.aclose()
