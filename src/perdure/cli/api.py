"""Where the operator commands find the server, and the thin HTTP shell they talk through.

The URLs come from `--admin-url` / `--ingress-url`, else `PERDURE_ADMIN_URL` /
`PERDURE_INGRESS_URL`, else the server's defaults; bearer tokens from `--admin-token` /
`--ingress-token`, else `PERDURE_ADMIN_TOKEN` / `PERDURE_INGRESS_TOKEN` (or the files named
by `PERDURE_ADMIN_TOKEN_FILE` / `PERDURE_INGRESS_TOKEN_FILE`), else none. Answers other
than 2xx become a `CliError` carrying the server's message and hint (`admin_error`, pure);
no answer at all becomes a `CliError` naming the URL and how to start a server.

Example::

    api = Api(Endpoints.resolve(None, None, {}))
    api.admin("GET", "/services")        # {'services': [...]}
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from perdure.cli.render import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from perdure.client.requests import HttpRequest, HttpResponse

DEFAULT_ADMIN_URL = "http://127.0.0.1:9070"
DEFAULT_INGRESS_URL = "http://127.0.0.1:8080"
ADMIN_URL_ENV = "PERDURE_ADMIN_URL"
INGRESS_URL_ENV = "PERDURE_INGRESS_URL"
# The same variables the server reads, so a shell that starts a server can also talk to it.
ADMIN_TOKEN_ENV = "PERDURE_ADMIN_TOKEN"
INGRESS_TOKEN_ENV = "PERDURE_INGRESS_TOKEN"
# Admin reads answer from committed storage at once; a registration waits for discovery, and
# a call through the ingress waits as long as the handler runs.
ADMIN_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
INGRESS_TIMEOUT = httpx.Timeout(connect=5.0, read=None, write=30.0, pool=30.0)


def normalize_url(text: str) -> str:
    """A base URL: 'http://' is added to a bare HOST:PORT, trailing slashes are dropped.

    >>> normalize_url("127.0.0.1:9070/"), normalize_url("https://p.example")
    ('http://127.0.0.1:9070', 'https://p.example')
    """
    text = text.strip().rstrip("/")
    return text if "://" in text else f"http://{text}"


@dataclass(frozen=True, slots=True)
class Endpoints:
    admin: str
    ingress: str
    # Bearer tokens, sent as `Authorization: Bearer ...`; kept out of the repr.
    admin_token: str | None = field(default=None, repr=False)
    ingress_token: str | None = field(default=None, repr=False)

    @classmethod
    def resolve(
        cls,
        admin_flag: str | None,
        ingress_flag: str | None,
        env: Mapping[str, str],
        *,
        admin_token_flag: str | None = None,
        ingress_token_flag: str | None = None,
    ) -> Endpoints:
        """Flag, then environment variable (for a token: PERDURE_*_TOKEN, then the file named by
        PERDURE_*_TOKEN_FILE), then default.

        >>> e = Endpoints.resolve(None, "localhost:1", {"PERDURE_ADMIN_URL": "h:2"})
        >>> e, e.admin_token
        (Endpoints(admin='http://h:2', ingress='http://localhost:1'), None)
        """
        admin = admin_flag or env.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL
        ingress = ingress_flag or env.get(INGRESS_URL_ENV) or DEFAULT_INGRESS_URL
        return cls(
            normalize_url(admin),
            normalize_url(ingress),
            _token(admin_token_flag, ADMIN_TOKEN_ENV, env),
            _token(ingress_token_flag, INGRESS_TOKEN_ENV, env),
        )

    def auth(self, which: str) -> dict[str, str]:
        """The Authorization header for "admin" or "ingress" ({} without a token)."""
        token = self.admin_token if which == "admin" else self.ingress_token
        return {"authorization": f"Bearer {token}"} if token else {}


def _token(flag: str | None, variable: str, env: Mapping[str, str]) -> str | None:
    if flag:
        return flag.strip()
    if env.get(variable, "").strip():
        return env[variable].strip()
    path = env.get(variable + "_FILE", "").strip()
    if not path:
        return None
    try:
        return Path(path).expanduser().read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"cannot read the token file {path} named by {variable}_FILE ({exc}).",
            hint=f"Fix {variable}_FILE, or set {variable} instead.",
            exit_code=EXIT_USAGE,
        ) from None


def add_connection_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """--admin-url, --ingress-url and --json, accepted before or after the command.

    On subcommands the default is SUPPRESS so that a value given before the command is kept.
    """
    default: Any = None if top_level else argparse.SUPPRESS
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--admin-url",
        default=default,
        metavar="URL",
        help=f"admin API of the server [{ADMIN_URL_ENV}, default {DEFAULT_ADMIN_URL}]",
    )
    group.add_argument(
        "--ingress-url",
        default=default,
        metavar="URL",
        help=f"ingress of the server [{INGRESS_URL_ENV}, default {DEFAULT_INGRESS_URL}]",
    )
    group.add_argument(
        "--admin-token",
        default=default,
        metavar="TOKEN",
        help=f"bearer token for the admin API [{ADMIN_TOKEN_ENV}, or a file named by "
        f"{ADMIN_TOKEN_ENV}_FILE; the variables keep it out of the process list]",
    )
    group.add_argument(
        "--ingress-token",
        default=default,
        metavar="TOKEN",
        help=f"bearer token for the ingress [{INGRESS_TOKEN_ENV}, or {INGRESS_TOKEN_ENV}_FILE]",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="print the server's JSON instead of a table",
    )


def command(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that accepts the connection options after its name too."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    add_connection_options(parser, top_level=False)
    return parser


def usage(parser: argparse.ArgumentParser) -> int:
    """A command group run without a subcommand prints its help."""
    parser.print_help()
    return EXIT_USAGE


def endpoints_of(args: argparse.Namespace) -> Endpoints:
    return Endpoints.resolve(
        getattr(args, "admin_url", None),
        getattr(args, "ingress_url", None),
        os.environ,
        admin_token_flag=getattr(args, "admin_token", None),
        ingress_token_flag=getattr(args, "ingress_token", None),
    )


def segment(value: str) -> str:
    """A path segment, escaped (names and ids are safe, keys are free text)."""
    return quote(value, safe="")


# --- answers into errors (pure) ------------------------------------------------------------------


def admin_error(status: int, body: bytes, what: str) -> CliError:
    """The error for a non-2xx admin (or ingress) answer: the server's message and hint.

    >>> e = admin_error(404, b'{"message": "No such service.", "hint": "Register it."}', "x")
    >>> e.message, e.hint
    ('No such service.', 'Register it.')
    """
    text = body.decode("utf-8", "replace").strip()
    try:
        document = json.loads(text) if text else None
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        message = document["message"]
        hint = document.get("hint") if isinstance(document.get("hint"), str) else ""
        if hint and hint in message:  # the server's message may already end with its hint
            message = message.replace(hint, "").strip()
        return CliError(message, hint=hint or "", exit_code=EXIT_FAILED, status=status)
    return CliError(
        f"{what} answered {status}: {text[:300] or 'no body'}", exit_code=EXIT_FAILED, status=status
    )


def unreachable(which: str, url: str, exc: Exception) -> CliError:
    """No server answered at `url`: say where we looked and how to start or point at one."""
    flag = "--admin-url" if which == "admin API" else "--ingress-url"
    env = ADMIN_URL_ENV if which == "admin API" else INGRESS_URL_ENV
    return CliError(
        f"cannot reach the Perdure {which} at {url} ({type(exc).__name__}: {exc or 'no answer'}).",
        hint=f"Start a server with `perdure server` (or `perdure dev FILE`), or point {flag} "
        f"(or {env}) at the running one.",
        exit_code=EXIT_UNREACHABLE,
    )


# --- the shell -----------------------------------------------------------------------------------


class Api:
    """The HTTP shell: one httpx client per base URL, opened on first use."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._admin: httpx.Client | None = None
        self._ingress: httpx.Client | None = None

    def close(self) -> None:
        for client in (self._admin, self._ingress):
            if client is not None:
                client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def admin(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
    ) -> Any:
        """One admin request; the answer's JSON (None for an empty body)."""
        return self.admin_with_status(method, path, params=params, body=body)[1]

    def admin_with_status(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
    ) -> tuple[int, Any]:
        """One admin request: (status, the answer's JSON or None)."""
        if self._admin is None:
            self._admin = httpx.Client(
                base_url=self.endpoints.admin,
                timeout=ADMIN_TIMEOUT,
                headers=self.endpoints.auth("admin"),
            )
        try:
            response = self._admin.request(method, path, params=list(params) or None, json=body)
        except httpx.TransportError as exc:
            raise unreachable("admin API", self.endpoints.admin, exc) from None
        if not 200 <= response.status_code < 300:
            raise admin_error(response.status_code, response.content, f"{method} {path}")
        if not response.content:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            raise CliError(
                f"{method} {path} answered something that is not JSON; is "
                f"{self.endpoints.admin} a Perdure admin API?",
                hint="Point --admin-url at the admin port (9070 by default), not the ingress.",
            ) from None

    def ingress(self, request: HttpRequest) -> HttpResponse:
        """One ingress request, answered whatever its status (the caller reads errors)."""
        if self._ingress is None:
            self._ingress = httpx.Client(
                base_url=self.endpoints.ingress,
                timeout=INGRESS_TIMEOUT,
                headers=self.endpoints.auth("ingress"),
            )
        try:
            response = self._ingress.request(
                request.method,
                request.path,
                headers=list(request.headers),
                params=list(request.params) or None,
                content=request.body or None,
            )
        except httpx.TransportError as exc:
            raise unreachable("ingress", self.endpoints.ingress, exc) from None
        headers = {name.lower(): value for name, value in response.headers.items()}
        return HttpResponse(response.status_code, headers, response.content)
