"""The two conversions every client shell makes: a request value into httpx arguments, and an
httpx response into a response value. Pure: no I/O happens here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from perdure.client.requests import HttpRequest, HttpResponse

# Calls and attaches wait as long as the handler runs, which may be hours: no read timeout.
# Connecting should be quick, and a send is acknowledged once committed.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=60.0, pool=60.0)


def base_urls(ingress_url: str, admin_url: str) -> dict[str, str]:
    """Base URLs by request target, without trailing slashes."""
    return {"ingress": ingress_url.rstrip("/"), "admin": admin_url.rstrip("/")}


Auth = Mapping[str, tuple[tuple[str, str], ...]]


def auth_headers(
    token: str | None, admin_token: str | None
) -> dict[str, tuple[tuple[str, str], ...]]:
    """The Authorization header each target gets: the ingress token and the admin token differ.

    >>> auth_headers("t" * 16, None)["admin"]
    ()
    """

    def bearer(value: str | None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {value}"),) if value else ()

    return {"ingress": bearer(token), "admin": bearer(admin_token)}


def request_args(
    request: HttpRequest, bases: Mapping[str, str], auth: Auth | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``httpx.Client.request`` / ``httpx.AsyncClient.request``."""
    return {
        "method": request.method,
        "url": bases[request.target] + request.path,
        "headers": [*request.headers, *(auth or {}).get(request.target, ())],
        "params": list(request.params) or None,
        "content": request.body or None,
    }


def response_of(response: httpx.Response) -> HttpResponse:
    """The response as a value (header names lower case)."""
    headers = {name.lower(): value for name, value in response.headers.items()}
    return HttpResponse(response.status_code, headers, response.content)
