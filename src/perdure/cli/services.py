"""`perdure services list|describe`: what the registered deployments serve.

Example::

    perdure services list
    perdure services describe Counter
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from perdure.cli import render
from perdure.cli.api import Api, command, endpoints_of, segment, usage
from perdure.cli.deployments import handler_names
from perdure.cli.render import EXIT_OK

Doc = Mapping[str, Any]


def register(commands: Any) -> None:
    services = commands.add_parser(
        "services",
        help="list and describe registered services",
        description="Services and their handlers, as the registered deployments declare them.",
    )
    ssub = services.add_subparsers(dest="services_command", metavar="COMMAND")
    services.set_defaults(run=lambda _args: usage(services))
    command(ssub, "list", "list registered services").set_defaults(run=run_services_list)
    sdesc = command(ssub, "describe", "show one service: handlers, deployment, options")
    sdesc.add_argument("name")
    sdesc.set_defaults(run=run_services_describe)


# --- pure: screens ---


def services_table(document: Doc) -> str:
    rows = [
        [
            s.get("name"),
            s.get("ty"),
            s.get("revision"),
            s.get("deployment_id"),
            handler_names(s),
        ]
        for s in document.get("services") or []
    ]
    if not rows:
        return "No services registered. Register a deployment: perdure deployments register <uri>"
    return render.table(["NAME", "TYPE", "REVISION", "DEPLOYMENT", "HANDLERS"], rows)


def service_text(document: Doc) -> str:
    retry = document.get("retry_policy") or {}
    top = render.fields(
        [
            ("name", document.get("name")),
            ("type", document.get("ty")),
            ("deployment", document.get("deployment_id")),
            ("revision", document.get("revision")),
            ("public", document.get("public")),
            ("documentation", document.get("documentation")),
            (
                "retry policy",
                f"{retry.get('initial_interval')} x{retry.get('exponentiation_factor')} up to "
                f"{retry.get('max_interval')}, {retry.get('max_attempts')} attempts, then "
                f"{str(retry.get('on_max_attempts', '')).lower()}"
                if retry
                else None,
            ),
            ("inactivity timeout", document.get("inactivity_timeout")),
            ("abort timeout", document.get("abort_timeout")),
            ("journal retention", document.get("journal_retention")),
            ("idempotency retention", document.get("idempotency_retention")),
        ]
    )
    rows = [
        [h.get("name"), h.get("ty") or "-", h.get("input_description"), h.get("output_description")]
        for h in document.get("handlers") or []
    ]
    return top + "\n\n" + render.table(["HANDLER", "TYPE", "INPUT", "OUTPUT"], rows)


def run_services_list(args: argparse.Namespace) -> int:
    with Api(endpoints_of(args)) as api:
        document = api.admin("GET", "/services")
    if getattr(args, "json", False):
        render.show_json(document)
    else:
        render.show(services_table(document or {}))
    return EXIT_OK


def run_services_describe(args: argparse.Namespace) -> int:
    with Api(endpoints_of(args)) as api:
        document = api.admin("GET", f"/services/{segment(args.name)}")
    if getattr(args, "json", False):
        render.show_json(document)
    else:
        render.show(service_text(document or {}))
    return EXIT_OK
