"""`perdure invoke SERVICE[/KEY]/HANDLER [JSON]`: call or send through the ingress.

Example::

    perdure invoke Greeter/greet '"Ada"'
    perdure invoke Counter/clicks/add 1 --send --delay 10s --idempotency-key click-7
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from perdure.cli import render
from perdure.cli.api import Api, add_connection_options, admin_error, endpoints_of
from perdure.cli.render import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from perdure.client import requests as ingress
from perdure.client.requests import HttpResponse


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "invoke",
        help="call a handler through the ingress (or --send it without waiting)",
        description="Call SERVICE/HANDLER, or OBJECT/KEY/HANDLER, through the ingress and print "
        "its output. JSON is the input ('-' reads stdin); none sends an empty body.",
    )
    parser.add_argument("target", metavar="SERVICE[/KEY]/HANDLER")
    parser.add_argument("input", metavar="JSON", nargs="?", help="the handler's input as JSON")
    parser.add_argument("--send", action="store_true", help="do not wait: print the invocation id")
    parser.add_argument(
        "--delay", metavar="D", help="with --send: start after D (500ms, 10s, 5m, 1h30m, PT10S)"
    )
    parser.add_argument("--idempotency-key", metavar="K", help="the same K runs it at most once")
    add_connection_options(parser, top_level=False)
    parser.set_defaults(run=run_invoke)


# --- pure: arguments -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvokeTarget:
    service: str
    handler: str
    key: str | None = None


def parse_target(text: str) -> InvokeTarget:
    """SERVICE/HANDLER or SERVICE/KEY/HANDLER; a key may itself contain '/'.

    >>> parse_target("Counter/user/42/add")
    InvokeTarget(service='Counter', handler='add', key='user/42')
    """
    parts = text.strip("/").split("/")
    if len(parts) < 2 or not all(parts[:1] + parts[-1:]):
        raise CliError(
            f"'{text}' is not a target.",
            hint="Write SERVICE/HANDLER (e.g. Greeter/greet) or OBJECT/KEY/HANDLER "
            "(e.g. Counter/clicks/add).",
            exit_code=EXIT_USAGE,
        )
    if len(parts) == 2:
        return InvokeTarget(parts[0], parts[1])
    return InvokeTarget(parts[0], parts[-1], "/".join(parts[1:-1]))


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ISO = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def parse_delay(text: str) -> datetime.timedelta:
    """'500ms', '10s', '1h30m', '2d' or an ISO 8601 duration ('PT1M30S').

    >>> parse_delay("1m30s"), parse_delay("PT2.5S")
    (datetime.timedelta(seconds=90), datetime.timedelta(seconds=2, microseconds=500000))
    """
    compact = text.strip().replace(" ", "")
    iso = _ISO.fullmatch(compact.upper())
    if iso and compact.upper() not in ("P", "PT"):
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        return datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_MS[match.group(2)]
        position = match.end()
    if position != len(compact) or not compact:
        raise CliError(
            f"'{text}' is not a duration.",
            hint="Use e.g. 500ms, 10s, 5m, 1h30m, 2d or PT10S.",
            exit_code=EXIT_USAGE,
        )
    return datetime.timedelta(milliseconds=total)


def parse_input(text: str | None) -> bytes:
    """The JSON input as the request body (re-encoded compactly); None is an empty body.

    >>> parse_input('{"a": 1}'), parse_input(None)
    (b'{"a":1}', b'')
    """
    if text is None:
        return b""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(
            f"The input is not JSON ({exc}).",
            hint="Quote strings twice in the shell: perdure invoke Greeter/greet '\"Ada\"'.",
            exit_code=EXIT_USAGE,
        ) from None
    return json.dumps(value, separators=(",", ":")).encode()


def output_text(response: HttpResponse) -> str:
    """A handler's output for the terminal: JSON indented, text as is, bytes as a note."""
    if not response.body:
        return "(no output)"
    if "json" in response.headers.get("content-type", ""):
        try:
            return render.json_text(json.loads(response.body))
        except ValueError:
            pass
    try:
        return response.body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(response.body)} bytes of {response.headers.get('content-type', 'data')})"


def failure_error(response: HttpResponse) -> CliError:
    """A non-2xx ingress answer: the handler's terminal failure or the ingress's refusal."""
    error = admin_error(response.status, response.body, "the ingress")
    if response.headers.get("x-restate-error-source") == "invocation":
        error.message = f"the handler failed [{response.status}]: {error.message}"
    error.exit_code = EXIT_FAILED
    return error


def receipt_text(document: dict[str, Any], now_ms: int) -> str:
    """What `invoke --send` prints: the invocation id and how to follow it."""
    invocation_id = document.get("invocationId")
    status = document.get("status")
    lines = [f"{status}: {invocation_id}"]
    if document.get("executionTime"):
        lines.append(f"starts at {render.when(document['executionTime'], now_ms)}")
    lines.append(f"follow it: perdure invocations describe {invocation_id}")
    return "\n".join(lines)


# --- command -------------------------------------------------------------------------------------


def run_invoke(args: argparse.Namespace) -> int:
    target = parse_target(args.target)
    raw = sys.stdin.read() if args.input == "-" else args.input
    body = parse_input(raw)
    if args.delay and not args.send:
        raise CliError("--delay only works with --send.", hint="Add --send.", exit_code=EXIT_USAGE)
    if args.send:
        delay = parse_delay(args.delay) if args.delay else None
        request = ingress.send(
            target.service,
            target.handler,
            body,
            key=target.key,
            delay=delay,
            idempotency_key=args.idempotency_key,
        ).request
    else:
        request = ingress.call(
            target.service,
            target.handler,
            body,
            key=target.key,
            idempotency_key=args.idempotency_key,
        ).request
    with Api(endpoints_of(args)) as api:
        response = api.ingress(request)
    if not 200 <= response.status < 300:
        raise failure_error(response)
    as_json = getattr(args, "json", False)
    if args.send:
        document = json.loads(response.body or b"{}")
        render.show(
            render.json_text(document) if as_json else receipt_text(document, render.now_ms())
        )
    else:
        render.show(output_text(response))
    return EXIT_OK
