"""Perdure's public test kit: run your services on an embedded server from plain pytest.

Example::

    from perdure.testing import Harness

    def test_counter() -> None:
        with Harness([counter]) as env:
            assert env.client.object(counter, "a").add(2) == 2

``perdure.testing.storage_conformance`` holds the suite every storage backend must pass.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["AsyncHarness", "Harness", "ServiceEndpoint"]

if TYPE_CHECKING:
    from perdure.testing.harness import AsyncHarness, Harness, ServiceEndpoint


def __getattr__(name: str) -> Any:
    # Loaded on first use: the storage conformance suite must not pay for server and client.
    if name not in __all__:
        raise AttributeError(f"module 'perdure.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module("perdure.testing.harness"), name)
    globals()[name] = value
    return value
