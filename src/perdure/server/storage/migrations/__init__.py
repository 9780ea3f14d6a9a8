"""Numbered SQL migrations per backend (`<backend>/NNNN_name.sql`), read as package data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from perdure.server.storage.api import StorageError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int  # the schema version the database has once this migration is applied
    name: str
    sql: str


@cache
def load(backend: str) -> tuple[Migration, ...]:
    """Every migration of `backend`, in order; versions must run 1, 2, 3... without gaps."""
    found = []
    for entry in resources.files(__name__).joinpath(backend).iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(
                Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8"))
            )
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        # A packaging mistake, not a user's: fail loudly rather than skip a step of the schema.
        raise RuntimeError(f"the {backend} migrations are not numbered 1..N: {found!r}")
    return tuple(found)


def latest_version(backend: str) -> int:
    return len(load(backend))


def run(backend: str, current: int, where: str, apply: Callable[[Migration], None]) -> int:
    """Applies, through `apply`, each migration newer than `current`; returns the new version.

    `apply` must apply the SQL and record the new version in one transaction, so that a crash
    between two migrations leaves a database at a known version.
    """
    migrations = load(backend)
    if current > len(migrations):
        raise StorageError(
            f"{where} has schema version {current}, but this Perdure only knows versions up to "
            f"{len(migrations)}: it was written by a newer Perdure. Upgrade Perdure to open it."
        )
    for migration in migrations[current:]:
        apply(migration)
    return max(current, len(migrations))
