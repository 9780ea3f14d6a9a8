"""Wiring only: build the components, run every loop in one TaskGroup, stop cleanly.

ingress/admin (HTTP) --events--> Driver --apply--> Partition --(commit)--> effects
effects --> Invoker (attempts), TimerService (timers), request futures, registry reload
Invoker/TimerService --events--> Driver
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from perdure.server.config import Config
from perdure.server.driver import Driver
from perdure.server.identity import RequestSigner, load_or_create_key
from perdure.server.ids import RandomIds
from perdure.server.invoker.admission import SendAdmission
from perdure.server.invoker.h1 import H1Transport
from perdure.server.invoker.h2 import H2Transport
from perdure.server.invoker.service import Invoker
from perdure.server.invoker.status import InvokerAwareStorage
from perdure.server.partition import Partition
from perdure.server.partition.effects import (
    AbortAttempt,
    CancelTimer,
    Effect,
    RegistryChanged,
    ScheduleTimer,
    SendToAttempt,
    StartAttempt,
)
from perdure.server.partition.events import ServerStarted, TimerFired
from perdure.server.registry import Registry
from perdure.server.storage import open_storage, resolve_sqlite_path
from perdure.server.storage.api import Storage, Target
from perdure.server.timers import TimerService

log = logging.getLogger("perdure.server")


class DataDirectoryInUse(OSError):
    """Another server holds the data directory: two writers would run every invocation twice."""


class DataDirectoryLock:
    """An exclusive lock on `<database>.lock`, held for as long as the server runs.

    The operating system drops it when the process ends, however it ends (kill -9 included), so
    a lock is never left stale. Without it a second server on the same directory would start
    new attempts for every running invocation and hand out keys the first one holds.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> first = DataDirectoryLock.acquire(d / "perdure.db")
    >>> DataDirectoryLock.acquire(d / "perdure.db")
    Traceback (most recent call last):
    ...
    perdure.server.app.DataDirectoryInUse: ...
    >>> first.release()
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: Path) -> DataDirectoryLock:
        path = database.with_name(database.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if sys.platform != "win32":
            import fcntl

            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise DataDirectoryInUse(
                    f"the data directory {database.parent} is in use by another Perdure server "
                    f"(pid {holder}); stop that one, or give this one another --data-dir"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class Bound:
    """Where the server actually listens (ports resolved when 0 was asked)."""

    ingress: tuple[str, int]
    admin: tuple[str, int]


class PerdureServer:
    """One Perdure server: storage, partition, driver, invoker, timers, ingress and admin."""

    def __init__(
        self,
        config: Config,
        storage: Storage | None = None,
        *,
        invoker_concurrency_limit: int | None = None,
    ) -> None:
        """`invoker_concurrency_limit`: at most this many attempts open at once (None: the
        config's `invoker_concurrency_limit`); the others wait in the invoker's queue
        (`invoker/slots.py`)."""
        self.config = config
        self._lock: DataDirectoryLock | None = None
        if storage is None:
            # Locked before the database is opened, so that not even a migration runs twice.
            self._lock = DataDirectoryLock.acquire(resolve_sqlite_path(config.data_dir))
        try:
            self.storage = storage if storage is not None else open_storage(config.data_dir)
            # Every request to a deployment is signed (Restate's request identity, identity.py).
            self.signer = RequestSigner(
                load_or_create_key(
                    config.request_identity_private_key,
                    config.data_dir if storage is None else None,
                )
            )
        except BaseException:
            self.close_lock()
            raise
        self.registry = self._load_registry()
        self.ids = RandomIds()
        self.partition = Partition(lambda: self.registry, self.ids)
        self.driver = Driver(self.storage, self.partition, self._dispatch)
        self.timers = TimerService(
            lambda timer: self.driver.submit(TimerFired(timer)),
            page=lambda after, limit: self.storage.reader().list_timers(after, limit),
        )
        self.h2 = H2Transport()
        self.h1 = H1Transport()
        self.invoker = Invoker(
            self.driver.submit,
            lambda: self.registry,
            self.h2,
            self.h1,
            extra_headers=lambda _deployment, url: self.signer.headers(url),
            concurrency_limit=(
                invoker_concurrency_limit
                if invoker_concurrency_limit is not None
                else config.invoker_concurrency_limit
            ),
        )
        self.bound: Bound | None = None
        self._stopping = asyncio.Event()
        self.instance = secrets.token_hex(4)

    def _load_registry(self) -> Registry:
        reader = self.storage.reader()
        return Registry(
            reader.list_deployments(), reader.list_services(), self.config.registry_defaults()
        )

    def _dispatch(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, SendToAttempt):
                self.invoker.send(effect)
            elif isinstance(effect, StartAttempt):
                self.invoker.start(effect)
            elif isinstance(effect, AbortAttempt):
                self.invoker.abort(effect)
            elif isinstance(effect, ScheduleTimer):
                self.timers.schedule(effect.timer)
            elif isinstance(effect, CancelTimer):
                self.timers.cancel(effect.timer_id)
            elif isinstance(effect, RegistryChanged):
                self.registry = self._load_registry()

    def close_lock(self) -> None:
        """Releases the data directory (done by `run` when it ends)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def stop(self) -> None:
        """Asks `run` to stop (safe from a signal handler in the server's loop)."""
        self._stopping.set()

    async def wait_stopping(self) -> None:
        """Returns once `stop()` was called (for things that live as long as the server)."""
        await self._stopping.wait()

    def _target_of(self, invocation_id: str) -> Target | None:
        row = self.storage.reader().get_invocation(invocation_id)
        return row.target if row is not None else None

    async def run(self, on_ready: Callable[[Bound], None] | None = None) -> None:
        """Serves until `stop()`; `on_ready` is called once both APIs listen."""
        from perdure.server.admin.app import AdminApp
        from perdure.server.http import serve_apps, sites
        from perdure.server.ingress.app import IngressApp
        from perdure.server.invoker.discovery import Discoverer

        self.timers.refill()  # the earliest stored timers; later ones are read as time goes
        self.driver.submit(ServerStarted())
        ingress = IngressApp(
            SendAdmission(self.driver, self.invoker),
            lambda: self.registry,
            self.ids,
            self.config,
            target_of=self._target_of,
        )
        admin = AdminApp(
            self.driver,
            lambda: self.registry,
            InvokerAwareStorage(self.storage, self.invoker.is_waiting),
            self.config,
            discover=Discoverer(self.h2, self.h1, sign=self.signer.headers).discover,
        )
        try:
            # Bound before the TaskGroup so that a BindError reaches the caller as itself;
            # requests accepted before the driver task starts simply wait in its queue.
            servers = await serve_apps(sites(self.config, ingress, admin))
            async with asyncio.TaskGroup() as group:
                driver_task = group.create_task(self.driver.run(), name="driver")
                timers_task = group.create_task(self.timers.run(), name="timers")
                self.bound = Bound(servers.address("ingress"), servers.address("admin"))
                log.info(
                    "perdure server ready: ingress on %s, admin on %s, data in %s",
                    servers.url("ingress"),
                    servers.url("admin"),
                    self.config.data_dir,
                )
                log.info(
                    "request identity public key: %s (give it to deployments as identity_keys)",
                    self.signer.public_key,
                )
                if on_ready is not None:
                    on_ready(self.bound)
                await self._stopping.wait()
                log.info("stopping: closing listeners; running attempts resume after a restart")
                await servers.close()
                await admin.aclose()
                await self.invoker.close()
                driver_task.cancel()
                timers_task.cancel()
        finally:
            with suppress(Exception):
                await self.h2.close()
            with suppress(Exception):
                await self.h1.close()
            self.storage.close()
            self.close_lock()
