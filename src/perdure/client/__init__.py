"""Perdure's ingress client: call, send, attach and register, from sync or asyncio code.

Example::

    from perdure.client import Client

    with Client("http://127.0.0.1:8080") as client:
        client.service(Greeter).greet("Ada")
"""

from __future__ import annotations

from perdure.client.aio import AsyncClient
from perdure.client.errors import (
    ClientError,
    ConflictError,
    IngressError,
    InvocationFailedError,
    NotFoundError,
    NotReadyError,
    UnavailableError,
    UnreachableError,
)
from perdure.client.requests import Deployment, SendReceipt
from perdure.client.sync import Client
from perdure.client.typed import HandlerClient, TargetClient, WorkflowClient

__all__ = [
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
