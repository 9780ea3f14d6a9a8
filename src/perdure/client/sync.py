"""``Client``: the ingress and admin APIs from blocking code, a thin shell over ``httpx.Client``."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from perdure.client import requests as rq
from perdure.client._http import (
    DEFAULT_TIMEOUT,
    auth_headers,
    base_urls,
    request_args,
    response_of,
)
from perdure.client.typed import TargetClient, WorkflowClient, target, workflow_target
from perdure.sdk.service import Service, VirtualObject, Workflow

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """Calls handlers through a Restate or Perdure server's ingress, and registers deployments.

    Example::

        with Client("http://127.0.0.1:8080") as client:
            client.service(Greeter).greet("Ada")            # 'Hello Ada!'
            client.object(Counter, "clicks").add(1)         # 1
            client.call("Greeter", "greet", "Bob")          # by name, JSON in and out
            receipt = client.send("Greeter", "greet", "Eve", delay=timedelta(minutes=1))
            client.attach(receipt.invocation_id)

    A server started with ``--ingress-token`` / ``--admin-token`` wants ``token=`` (sent to
    the ingress only) and ``admin_token=`` (sent to the admin API only).
    """

    def __init__(
        self,
        ingress_url: str = "http://127.0.0.1:8080",
        *,
        admin_url: str = "http://127.0.0.1:9070",
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        admin_token: str | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._bases = base_urls(ingress_url, admin_url)
        # The server's --ingress-token and --admin-token, each sent only to its own port.
        self._auth = auth_headers(token, admin_token)
        self._http = httpx.Client(headers=dict(headers or {}), timeout=timeout, transport=transport)

    def execute(self, call: rq.Call[T]) -> T:
        """Make one request built by :mod:`perdure.client.requests` and read its answer."""
        try:
            response = self._http.request(**request_args(call.request, self._bases, self._auth))
        except httpx.TransportError as exc:
            raise rq.unreachable(call.request, self._bases[call.request.target], exc) from exc
        return call.parse(response_of(response))

    # -- typed, from definitions (or names) -----------------------------------------------

    def service(self, definition: Service | str) -> TargetClient:
        """A service's handlers as attributes: ``client.service(Greeter).greet("Ada")``."""
        return target(definition, None, self.execute, expected="SERVICE")

    def object(self, definition: VirtualObject | str, key: str) -> TargetClient:
        """One object's handlers: ``client.object(Counter, "clicks").add(1)``."""
        return target(definition, key, self.execute, expected="VIRTUAL_OBJECT")

    def workflow(
        self, definition: Workflow | str, key: str, *, run_handler: str = "run"
    ) -> WorkflowClient:
        """One workflow instance: ``client.workflow(Signup, "ada").submit(...)``.

        ``run_handler`` names the run handler when the workflow is given by name.
        """
        return workflow_target(definition, key, self.execute, run_handler=run_handler)

    # -- plain, by name ---------------------------------------------------------------------

    def call(
        self,
        service: str,
        handler: str,
        arg: Any = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Call a handler by name and return its output (JSON decoded, else bytes).

        Example::

            client.call("Counter", "add", 1, key="clicks")
        """
        handler_client = TargetClient(service, key, self.execute).handler(handler)
        return handler_client(arg, idempotency_key=idempotency_key, headers=headers)

    def send(
        self,
        service: str,
        handler: str,
        arg: Any = None,
        *,
        key: str | None = None,
        delay: datetime.timedelta | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> rq.SendReceipt:
        """Start a handler by name without waiting for it.

        Example::

            client.send("Greeter", "greet", "Ada", delay=timedelta(hours=1)).invocation_id
        """
        handler_client = TargetClient(service, key, self.execute).handler(handler)
        receipt: rq.SendReceipt = handler_client.send(
            arg, delay=delay, idempotency_key=idempotency_key, headers=headers
        )
        return receipt

    def attach(self, invocation_id: str) -> Any:
        """Wait for an invocation to finish and return its output.

        Example::

            client.attach(receipt.invocation_id)
        """
        return self.execute(rq.attach(invocation_id))

    def output(self, invocation_id: str) -> Any:
        """An invocation's output if it finished; raises :class:`NotReadyError` if not."""
        return self.execute(rq.output(invocation_id))

    def resolve_awakeable(self, awakeable_id: str, value: Any = None) -> None:
        """Complete an awakeable with ``value`` (sent as JSON; bytes are sent raw).

        Example::

            client.resolve_awakeable(awakeable_id, {"approved": True})
        """
        body, content_type = rq.encode_value(value)
        self.execute(rq.resolve_awakeable(awakeable_id, body, content_type=content_type))

    def reject_awakeable(self, awakeable_id: str, reason: str) -> None:
        """Fail an awakeable with ``reason``; the waiting handler sees a terminal error."""
        self.execute(rq.reject_awakeable(awakeable_id, reason))

    def cancel_invocation(self, invocation_id: str) -> None:
        """Cancel an invocation (admin API): it sees InvocationCancelledError, and may compensate.

        Example::

            client.cancel_invocation(receipt.invocation_id)
        """
        self.execute(rq.cancel_invocation(invocation_id))

    def kill_invocation(self, invocation_id: str) -> None:
        """Kill an invocation (admin API): it ends at once, no handler code runs again."""
        self.execute(rq.kill_invocation(invocation_id))

    def register_deployment(
        self,
        uri: str,
        *,
        force: bool = False,
        use_http_11: bool = False,
        additional_headers: Mapping[str, str] | None = None,
    ) -> rq.Deployment:
        """Register the deployment at ``uri`` with the admin API.

        Example::

            client.register_deployment("http://127.0.0.1:9080").services   # ('Greeter',)
        """
        return self.execute(
            rq.register_deployment(
                uri, force=force, use_http_11=use_http_11, additional_headers=additional_headers
            )
        )

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
