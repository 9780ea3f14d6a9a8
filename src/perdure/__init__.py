"""Perdure: durable execution in Python, wire-compatible with Restate.

The SDK's public surface. Names load on first use, so that ``import perdure.server`` (which
runs this file) does not pay for the SDK, and the SDK does not pay for the server.

Example::

    import perdure

    greeter = perdure.Service("Greeter")

    @greeter.handler()
    async def greet(ctx: perdure.Context, name: str) -> str:
        return f"Hello {name}!"

    perdure.serve([greeter], port=9080)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BytesSerde",
    "CallFuture",
    "Context",
    "DurableFuture",
    "DurablePromise",
    "InvocationCancelledError",
    "JsonSerde",
    "MsgspecSerde",
    "ObjectContext",
    "ObjectSharedContext",
    "PydanticSerde",
    "Request",
    "RetryPolicy",
    "RetryableError",
    "RunOptions",
    "SendHandle",
    "Serde",
    "SerdeError",
    "Service",
    "TerminalError",
    "TypedJsonSerde",
    "VirtualObject",
    "Workflow",
    "WorkflowContext",
    "WorkflowSharedContext",
    "all_settled",
    "app",
    "as_completed",
    "first_succeeded",
    "gather",
    "race",
    "select",
    "serve",
    "wait_completed",
]

# Where each public name lives.
_HOME: dict[str, str] = {
    "BytesSerde": "perdure.sdk.serde",
    "CallFuture": "perdure.sdk.futures",
    "Context": "perdure.sdk.context",
    "DurableFuture": "perdure.sdk.futures",
    "DurablePromise": "perdure.sdk.futures",
    "InvocationCancelledError": "perdure.sdk.errors",
    "JsonSerde": "perdure.sdk.serde",
    "MsgspecSerde": "perdure.sdk.serde",
    "ObjectContext": "perdure.sdk.context",
    "ObjectSharedContext": "perdure.sdk.context",
    "PydanticSerde": "perdure.sdk.serde",
    "Request": "perdure.sdk.values",
    "RetryPolicy": "perdure.sdk.handler",
    "RetryableError": "perdure.sdk.errors",
    "RunOptions": "perdure.sdk.values",
    "SendHandle": "perdure.sdk.futures",
    "Serde": "perdure.sdk.serde_protocol",
    "SerdeError": "perdure.sdk.serde",
    "Service": "perdure.sdk.service",
    "TerminalError": "perdure.sdk.errors",
    "TypedJsonSerde": "perdure.sdk.serde",
    "VirtualObject": "perdure.sdk.service",
    "Workflow": "perdure.sdk.service",
    "WorkflowContext": "perdure.sdk.context",
    "WorkflowSharedContext": "perdure.sdk.context",
    "all_settled": "perdure.sdk.combinators",
    "app": "perdure.sdk.endpoint",
    "as_completed": "perdure.sdk.combinators",
    "first_succeeded": "perdure.sdk.combinators",
    "gather": "perdure.sdk.combinators",
    "race": "perdure.sdk.combinators",
    "select": "perdure.sdk.combinators",
    "serve": "perdure.sdk.serving",
    "wait_completed": "perdure.sdk.combinators",
}

if TYPE_CHECKING:
    from perdure.sdk.combinators import (
        all_settled,
        as_completed,
        first_succeeded,
        gather,
        race,
        select,
        wait_completed,
    )
    from perdure.sdk.context import (
        Context,
        ObjectContext,
        ObjectSharedContext,
        WorkflowContext,
        WorkflowSharedContext,
    )
    from perdure.sdk.endpoint import app
    from perdure.sdk.errors import (
        InvocationCancelledError,
        RetryableError,
        TerminalError,
    )
    from perdure.sdk.futures import (
        CallFuture,
        DurableFuture,
        DurablePromise,
        SendHandle,
    )
    from perdure.sdk.handler import RetryPolicy
    from perdure.sdk.serde import (
        BytesSerde,
        JsonSerde,
        MsgspecSerde,
        PydanticSerde,
        SerdeError,
        TypedJsonSerde,
    )
    from perdure.sdk.serde_protocol import Serde
    from perdure.sdk.service import (
        Service,
        VirtualObject,
        Workflow,
    )
    from perdure.sdk.serving import serve
    from perdure.sdk.values import (
        Request,
        RunOptions,
    )


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'perdure' has no attribute {name!r}")
    try:
        module = importlib.import_module(home)
    except ModuleNotFoundError as exc:
        if exc.name != home:
            raise
        raise AttributeError(
            f"perdure.{name} lives in {home}, which this install does not have"
        ) from exc
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
