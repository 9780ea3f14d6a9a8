"""`perdure deployments register|list|describe|remove`: the endpoints that serve services.

Example::

    perdure deployments register http://127.0.0.1:9080
    perdure deployments describe dp_1...
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from perdure.cli import render
from perdure.cli.api import Api, command, endpoints_of, segment, usage
from perdure.cli.render import EXIT_OK, EXIT_USAGE, CliError

Doc = Mapping[str, Any]


def register(commands: Any) -> None:
    deployments = commands.add_parser(
        "deployments",
        help="register, list, describe and remove deployments (service endpoints)",
        description="Deployments are the endpoints that serve your services (any Restate SDK).",
    )
    sub = deployments.add_subparsers(dest="deployments_command", metavar="COMMAND")
    deployments.set_defaults(run=lambda _args: usage(deployments))

    reg = command(sub, "register", "discover the services at URI and register them")
    reg.add_argument("uri", help="where the SDK endpoint listens, e.g. http://127.0.0.1:9080")
    reg.add_argument(
        "--force",
        action="store_true",
        help="replace an existing registration of the same URI even if it changes services",
    )
    reg.add_argument(
        "--use-http1.1",
        dest="use_http_11",
        action="store_true",
        help="talk HTTP/1.1 request/response to it (suspends at every await) instead of HTTP/2",
    )
    reg.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="K:V",
        help="a header the server sends with every request to it (repeatable)",
    )
    reg.add_argument("--dry-run", action="store_true", help="discover and check, store nothing")
    reg.set_defaults(run=run_register)

    command(sub, "list", "list registered deployments").set_defaults(run=run_list)
    describe = command(sub, "describe", "show one deployment and the services it serves")
    describe.add_argument("id", help="a deployment id (dp_1...)")
    describe.set_defaults(run=run_describe)
    remove = command(sub, "remove", "remove a deployment")
    remove.add_argument("id", help="a deployment id (dp_1...)")
    remove.add_argument(
        "--force",
        action="store_true",
        help="remove it even though invocations may still need it (required today)",
    )
    remove.set_defaults(run=run_remove)


# --- pure: arguments and screens -----------------------------------------------------------------


def parse_headers(items: Sequence[str]) -> dict[str, str]:
    """`--header K:V` values as a dict; a value without ':' is a usage error.

    >>> parse_headers(["Authorization: Bearer x", "x-a:1"])
    {'Authorization': 'Bearer x', 'x-a': '1'}
    """
    headers = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise CliError(
                f"The header '{item}' is not of the form NAME:VALUE.",
                hint="Write it as --header 'Authorization: Bearer <token>'.",
                exit_code=EXIT_USAGE,
            )
        headers[name.strip()] = value.strip()
    return headers


def registration_body(
    uri: str, *, force: bool, use_http_11: bool, headers: Mapping[str, str], dry_run: bool
) -> dict[str, Any]:
    """The POST /deployments body (Restate's RegisterDeploymentRequest)."""
    body: dict[str, Any] = {"uri": uri, "force": force, "use_http_11": use_http_11}
    if headers:
        body["additional_headers"] = dict(headers)
    if dry_run:
        body["dry_run"] = True
    return body


def handler_names(service: Doc) -> str:
    return ", ".join(str(h.get("name")) for h in service.get("handlers") or [])


def registered_text(status: int, document: Doc, uri: str) -> str:
    """What `deployments register` prints."""
    if document.get("dry_run"):
        verb = "would register"
    elif status == 201:
        verb = "registered"
    else:
        verb = "already registered (or updated)"
    head = f"Deployment {document.get('id')} at {uri}: {verb}."
    rows = [
        [s.get("name"), s.get("ty"), s.get("revision"), handler_names(s)]
        for s in document.get("services") or []
    ]
    return head + "\n\n" + render.table(["SERVICE", "TYPE", "REVISION", "HANDLERS"], rows)


def deployments_table(document: Doc, now_ms: int) -> str:
    rows = [
        [
            d.get("id"),
            d.get("uri"),
            d.get("http_version"),
            ", ".join(str(s.get("name")) for s in d.get("services") or []),
            render.relative(render.parse_timestamp(d.get("created_at")), now_ms),
        ]
        for d in document.get("deployments") or []
    ]
    if not rows:
        return "No deployments registered. Register one: perdure deployments register <uri>"
    return render.table(["ID", "URI", "HTTP", "SERVICES", "CREATED"], rows)


def deployment_text(document: Doc, now_ms: int) -> str:
    headers = document.get("additional_headers") or {}
    top = render.fields(
        [
            ("id", document.get("id")),
            ("uri", document.get("uri")),
            ("protocol", f"{document.get('protocol_type')} over {document.get('http_version')}"),
            (
                "service protocol",
                f"v{document.get('min_protocol_version')}-v{document.get('max_protocol_version')}",
            ),
            ("sdk", document.get("sdk_version")),
            ("headers", ", ".join(headers) if headers else None),
            ("created", render.when(document.get("created_at"), now_ms)),
        ]
    )
    rows = [
        [s.get("name"), s.get("ty"), s.get("revision"), handler_names(s)]
        for s in document.get("services") or []
    ]
    return top + "\n\n" + render.table(["SERVICE", "TYPE", "REVISION", "HANDLERS"], rows)


# --- commands ------------------------------------------------------------------------------------


def run_register(args: argparse.Namespace) -> int:
    body = registration_body(
        args.uri,
        force=args.force,
        use_http_11=args.use_http_11,
        headers=parse_headers(args.header),
        dry_run=args.dry_run,
    )
    with Api(endpoints_of(args)) as api:
        status, document = api.admin_with_status("POST", "/deployments", body=body)
    if getattr(args, "json", False):
        render.show_json(document)
    else:
        render.show(registered_text(status, document or {}, args.uri))
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    with Api(endpoints_of(args)) as api:
        document = api.admin("GET", "/deployments")
    if getattr(args, "json", False):
        render.show_json(document)
    else:
        render.show(deployments_table(document or {}, render.now_ms()))
    return EXIT_OK


def run_describe(args: argparse.Namespace) -> int:
    with Api(endpoints_of(args)) as api:
        document = api.admin("GET", f"/deployments/{segment(args.id)}")
    if getattr(args, "json", False):
        render.show_json(document)
    else:
        render.show(deployment_text(document or {}, render.now_ms()))
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    if not args.force:
        raise CliError(
            f"Deployment {args.id} was not removed: Perdure cannot yet drain a deployment, so "
            "removal must be forced.",
            hint="Check `perdure invocations list --status active` for invocations that still "
            f"need it, then run `perdure deployments remove {args.id} --force`.",
            exit_code=EXIT_USAGE,
        )
    with Api(endpoints_of(args)) as api:
        api.admin("DELETE", f"/deployments/{segment(args.id)}", params=[("force", "true")])
    if not getattr(args, "json", False):
        render.show(f"Deployment {args.id} removed.")
    else:
        render.show_json({"id": args.id, "removed": True})
    return EXIT_OK
