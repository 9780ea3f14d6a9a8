"""`perdure explain ID|SERVICE[/KEY]`: why is it where it is, and what to run next.

This module gathers what the admin API knows (the invocation, the deployments, the key's
inbox and lock holder, the callee of an awaited call) and hands it to the pure rules of
`perdure.cli.diagnosis`.

Example::

    perdure explain inv_1gdJBtdVEcM9...
    perdure explain Counter/clicks
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from perdure.cli import render
from perdure.cli.api import Api, add_connection_options, endpoints_of, segment
from perdure.cli.diagnosis import (
    Context,
    Diagnosis,
    awaited_callee,
    explain_invocation,
    explain_target,
    not_found,
)
from perdure.cli.render import EXIT_FAILED, EXIT_OK, CliError

Doc = Mapping[str, Any]
# The reasons that mean "this does not exist": the command exits with EXIT_FAILED.
_MISSING = frozenset({"not-found", "service-not-registered"})
_INBOX_PAGE = 1000  # the admin API's largest page


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "explain",
        help="say why an invocation (or a service/key) is where it is, and what to run next",
        description="Diagnose an invocation (inv_1...) or a service or object key "
        "(SERVICE or SERVICE/KEY): waiting for a lock, suspended on a timer or awakeable, "
        "backing off, paused, deployment gone, never accepted.",
    )
    parser.add_argument("subject", metavar="ID|SERVICE[/KEY]")
    add_connection_options(parser, top_level=False)
    parser.set_defaults(run=run_explain)


def is_invocation_id(subject: str) -> bool:
    """
    >>> is_invocation_id("inv_1abc"), is_invocation_id("Counter/inv_1")
    (True, False)
    """
    return subject.startswith("inv_")


def diagnosis_text(subject: str, d: Diagnosis, headline: str = "") -> str:
    """What `explain` prints: the headline, the sentence, the facts, the next commands.

    >>> print(diagnosis_text("inv_1", Diagnosis("idle", "Nothing.", ("a fact",), ("cmd",))))
    inv_1: idle
    Nothing.
      - a fact
    <BLANKLINE>
    Next:
      cmd
    """
    lines = [headline or f"{subject}: {d.reason}", d.summary]
    lines.extend(f"  - {fact}" for fact in d.details)
    if d.next_steps:
        lines.extend(["", "Next:"])
        lines.extend(f"  {step}" for step in d.next_steps)
    return "\n".join(lines)


# --- gathering (I/O) -----------------------------------------------------------------------------


def _get_or_none(api: Api, path: str, params: list[tuple[str, str]] | None = None) -> Any:
    try:
        return api.admin("GET", path, params=params or [])
    except CliError as error:
        if error.status == 404:
            return None
        raise


def _invocation_context(api: Api, inv: Doc, now_ms: int, depth: int) -> Context:
    deployments = {
        str(d.get("id")): d for d in (api.admin("GET", "/deployments") or {}).get("deployments", [])
    }
    queue: list[Doc] = []
    holder: Doc | None = None
    if inv.get("status") == "pending" and inv.get("target_service_key") is not None:
        page = api.admin(
            "GET",
            "/invocations",
            params=[
                ("service", str(inv.get("target_service_name"))),
                ("key", str(inv.get("target_service_key"))),
                ("status", "pending"),
                ("limit", str(_INBOX_PAGE)),
            ],
        )
        pending = (page or {}).get("invocations", [])
        # A full page may not reach back to the oldest: then only the count is reliable.
        queue = list(reversed(pending)) if len(pending) < _INBOX_PAGE else []
        holder_id = (inv.get("key_lock") or {}).get("holder")
        if holder_id and holder_id != inv.get("id"):
            holder = _get_or_none(api, f"/invocations/{segment(str(holder_id))}")
    callee: Diagnosis | None = None
    callee_id = awaited_callee(inv)
    if callee_id and depth > 0:
        callee_doc = _get_or_none(api, f"/invocations/{segment(callee_id)}")
        if callee_doc is not None:
            callee_ctx = _invocation_context(api, callee_doc, now_ms, depth - 1)
            callee = explain_invocation(callee_doc, callee_ctx)
    return Context(
        now_ms=now_ms,
        deployments=deployments,
        queue=queue,
        holder=holder,
        callee=callee,
        ingress_url=api.endpoints.ingress,
    )


def explain_id(api: Api, invocation_id: str, now_ms: int) -> tuple[Diagnosis, str]:
    inv = _get_or_none(api, f"/invocations/{segment(invocation_id)}")
    if inv is None:
        return not_found(invocation_id), f"{invocation_id}: not found"
    d = explain_invocation(inv, _invocation_context(api, inv, now_ms, depth=2))
    return d, f"{invocation_id}  {inv.get('target')}  {inv.get('status')}"


def explain_name(api: Api, subject: str, now_ms: int) -> tuple[Diagnosis, str]:
    service, sep, key_text = subject.partition("/")
    key = key_text if sep else None
    info = _get_or_none(api, f"/services/{segment(service)}")
    registered: list[str] = []
    active: list[Doc] = []
    lock: Doc | None = None
    if info is None:
        services = (api.admin("GET", "/services") or {}).get("services", [])
        registered = [str(s.get("name")) for s in services]
    else:
        params = [("service", service), ("status", "active"), ("limit", str(_INBOX_PAGE))]
        if key is not None:
            params.append(("key", key))
        page = api.admin("GET", "/invocations", params=params) or {}
        active = list(page.get("invocations") or [])
        if key is not None:
            lock = _key_lock(api, active)
    d = explain_target(service, key, info, registered, active, now_ms, lock)
    return d, f"{subject}: {d.reason}"


def _key_lock(api: Api, active: list[Doc]) -> Doc | None:
    """The key's lock as an exclusive invocation's detail shows it (shared ones have none)."""
    for inv in list(reversed(active))[:5]:
        detail = _get_or_none(api, f"/invocations/{segment(str(inv.get('id')))}")
        if detail is not None and detail.get("key_lock") is not None:
            lock: Doc = detail["key_lock"]
            return lock
    return None


def run_explain(args: argparse.Namespace) -> int:
    now_ms = render.now_ms()
    with Api(endpoints_of(args)) as api:
        if is_invocation_id(args.subject):
            d, headline = explain_id(api, args.subject, now_ms)
        else:
            d, headline = explain_name(api, args.subject, now_ms)
    if getattr(args, "json", False):
        render.show_json({"subject": args.subject, **d.to_json()})
    else:
        render.show(diagnosis_text(args.subject, d, headline))
    return EXIT_FAILED if d.reason in _MISSING else EXIT_OK
