"""Input and output rules of a handler (Restate's InputRules / OutputRules, from the manifest).

Pure: the ingress app calls `check_input` on a body it has read whole, and
`output_content_type` to label a handler's answer.
"""

from __future__ import annotations

import json

from perdure.server import errors as E
from perdure.server.errors import PerdureError
from perdure.server.registry import HandlerInfo


def check_input(
    handler: HandlerInfo, service: str, content_type: str | None, body: bytes
) -> PerdureError | None:
    """Whether a body fits the handler's declared input; the error says how to fix it.

    The rules are Restate's: a handler whose input is not required accepts an empty body
    without a content-type; otherwise the content-type must match the declared one (wildcards
    allowed) and a JSON input must not be empty.
    """
    desc = handler.definition.get("input")
    if desc is None:
        desc = {"required": False, "contentType": "*/*"}
    required = bool(desc.get("required", False))
    declared = desc.get("contentType")
    is_json = desc.get("jsonSchema") is not None
    name = f"'{service}/{handler.name}'"
    if not required and not body and content_type is None:
        return None
    if declared is None:
        # The handler takes no input at all.
        shown = f" (content-type '{content_type}')" if content_type else ""
        return PerdureError(
            E.INPUT_REJECTED,
            f"The handler {name} takes no input, but the request has a body{shown}.",
            hint="Send an empty body without a content-type.",
        )
    if content_type is None:
        return PerdureError(
            E.INPUT_REJECTED,
            f"The request has no content-type; the handler {name} expects '{declared}'.",
            hint=f"Add the header: -H 'content-type: {_example_type(declared)}'.",
        )
    if not _content_type_matches(declared, content_type):
        return PerdureError(
            E.INPUT_REJECTED,
            f"The content-type '{content_type}' does not match '{declared}', which the handler "
            f"{name} expects.",
            hint=f"Send -H 'content-type: {_example_type(declared)}'.",
        )
    if is_json and not body:
        return PerdureError(
            E.INPUT_REJECTED,
            f"The handler {name} takes a JSON value, but the body is empty.",
            hint="Send a JSON value, for example -d '\"Ada\"' or -d 'null'.",
        )
    if is_json and _is_json_type(content_type):
        problem = _json_problem(body)
        if problem is not None:
            return PerdureError(
                E.INPUT_REJECTED,
                f"The handler {name} takes a JSON value, but the body is not JSON ({problem}).",
                hint="Send a JSON value, for example -d '\"Ada\"' or -d '{\"n\": 1}'.",
            )
    return None


def _is_json_type(content_type: str) -> bool:
    """`application/json`, or any `+json` type (`application/problem+json`)."""
    subtype = content_type.split(";", 1)[0].strip().lower().partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


def _json_problem(body: bytes) -> str | None:
    """Why `body` is not one JSON value, or None when it is.

    Restate hands such a body to the handler, whose SDK then fails the invocation; rejecting
    it here answers 400 at once and stores nothing (DESIGN rule 6: bad input never lands).

    >>> _json_problem(b'{"n": 1}') is None, _json_problem(b"{not json")
    (True, 'line 1, column 2: expecting property name enclosed in double quotes')
    """
    try:
        json.loads(body)
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg[:1].lower()}{exc.msg[1:]}"
    return None


def _content_type_matches(declared: str, given: str) -> bool:
    want_type, _, want_sub = declared.strip().partition("/")
    got = given.split(";", 1)[0].strip()
    got_type, slash, got_sub = got.partition("/")
    if want_type == "*":
        return True
    if not slash:
        return False
    if want_type != got_type:
        return False
    return want_sub == "*" or want_sub == got_sub


def _example_type(declared: str) -> str:
    return (
        "application/json"
        if declared in ("*/*", "application/*")
        else declared.replace("/*", "/octet-stream")
    )


def output_content_type(handler: HandlerInfo | None, empty: bool) -> str | None:
    """The content-type of a successful answer, as Restate's OutputRules infer it."""
    desc = None if handler is None else handler.definition.get("output")
    if desc is None:
        return None if empty else "application/json"
    declared = desc.get("contentType")
    if declared is None:
        return None
    if empty and not desc.get("setContentTypeIfEmpty", False):
        return None
    return str(declared)
