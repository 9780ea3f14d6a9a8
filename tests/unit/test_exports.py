"""The public surfaces, pinned: adding or removing a name is a decision, not an accident."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import perdure
import perdure.client

PERDURE = [
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

CLIENT = [
    "AsyncClient",
    "Client",
    "ClientError",
    "ConflictError",
    "Deployment",
    "HandlerClient",
    "IngressError",
    "InvocationFailedError",
    "NotFoundError",
    "NotReadyError",
    "SendReceipt",
    "TargetClient",
    "UnavailableError",
    "UnreachableError",
    "WorkflowClient",
]


def test_perdure_exports_exactly_the_sdk_surface() -> None:
    assert perdure.__all__ == PERDURE
    assert sorted(perdure.__all__) == perdure.__all__


def test_perdure_client_exports_exactly_the_client_surface() -> None:
    assert perdure.client.__all__ == CLIENT
    for name in CLIENT:
        assert getattr(perdure.client, name) is not None


@pytest.mark.parametrize("name", PERDURE)
def test_every_perdure_name_resolves(name: str) -> None:
    home = perdure._HOME[name]
    if importlib.util.find_spec(home) is None:
        pytest.skip(f"{home} is not written yet")
    assert getattr(perdure, name) is getattr(importlib.import_module(home), name)


def test_importing_perdure_does_not_load_the_sdk() -> None:
    code = "import sys, perdure; print('perdure.sdk.endpoint' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = perdure.Nope  # type: ignore[attr-defined]
