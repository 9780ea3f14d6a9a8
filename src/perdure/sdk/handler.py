"""One handler's definition: its function, kind, payloads (type hints, serdes) and options."""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Literal, TypedDict

from perdure.sdk.serde import BytesSerde, accepts_none, serde_for
from perdure.sdk.serde_protocol import Serde

__all__ = [
    "Duration",
    "Handler",
    "HandlerKind",
    "HandlerOptions",
    "ObjectHandlerOptions",
    "Options",
    "Payload",
    "RetryPolicy",
    "ServiceType",
    "WorkflowRunOptions",
    "handler_of",
]

ServiceType = Literal["SERVICE", "VIRTUAL_OBJECT", "WORKFLOW"]
HandlerKind = Literal["exclusive", "shared", "workflow"]
Duration = timedelta | int | float
"""A duration: a ``timedelta``, or a number of seconds."""

# The manifest schema's patterns (restate service-protocol/endpoint_manifest_schema.json).
SERVICE_NAME = re.compile(r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*$")
HANDLER_NAME = re.compile(r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*$")

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"

# The attribute a decorated handler function carries, so calls and proxies can find it.
HANDLER_ATTRIBUTE = "__perdure_handler__"


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How Restate retries a failing invocation (needs restate-server 1.5+, manifest v4).

    ``on_max_attempts`` says what happens when ``max_attempts`` is reached: ``"pause"`` keeps
    the invocation for an operator to resume, ``"kill"`` ends it with a failure.

    Example::

        RetryPolicy(initial_interval=timedelta(seconds=1), exponentiation_factor=2.0,
                    max_interval=timedelta(minutes=1), max_attempts=10, on_max_attempts="pause")
    """

    initial_interval: Duration | None = None
    exponentiation_factor: float | None = None
    max_interval: Duration | None = None
    max_attempts: int | None = None
    on_max_attempts: Literal["pause", "kill"] | None = None

    def __post_init__(self) -> None:
        for name in ("initial_interval", "max_interval"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, to_timedelta(value, f"RetryPolicy.{name}"))
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts counts the first attempt too: use 1 or more")
        if self.exponentiation_factor is not None and self.exponentiation_factor <= 0:
            raise ValueError("RetryPolicy.exponentiation_factor must be positive (e.g. 2.0)")
        if self.on_max_attempts not in (None, "pause", "kill"):
            raise ValueError(
                f"RetryPolicy.on_max_attempts must be 'pause' or 'kill', "
                f"not {self.on_max_attempts!r}"
            )


def to_timedelta(value: Duration, what: str) -> timedelta:
    """Normalise a :data:`Duration` and refuse negative ones."""
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise TypeError(f"{what} must be a timedelta or a number of seconds, not {value!r}")
    delta = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if delta < timedelta(0):
        raise ValueError(f"{what} must not be negative, got {delta}")
    return delta


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """Options a service or a handler carries into the manifest; ``None`` leaves Restate's default.

    Example::

        Options(inactivity_timeout=timedelta(minutes=5), ingress_private=True)
    """

    description: str | None = None
    metadata: Mapping[str, str] | None = None
    inactivity_timeout: timedelta | None = None
    abort_timeout: timedelta | None = None
    journal_retention: timedelta | None = None
    idempotency_retention: timedelta | None = None
    workflow_retention: timedelta | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy: RetryPolicy | None = None

    @classmethod
    def build(cls, owner: str, **values: Any) -> Options:
        """Check and normalise user-given values (durations, metadata) into ``Options``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"{owner}: unknown option(s) {', '.join(unknown)}")
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            if name.endswith(("_timeout", "_retention")):
                value = to_timedelta(value, f"{owner}: {name}")
            elif name == "metadata":
                value = _check_metadata(owner, value)
            elif name in ("enable_lazy_state", "ingress_private") and not isinstance(value, bool):
                raise TypeError(f"{owner}: {name} must be True or False, not {value!r}")
            elif name == "retry_policy" and not isinstance(value, RetryPolicy):
                raise TypeError(f"{owner}: retry_policy must be a perdure.RetryPolicy")
            clean[name] = value
        return cls(**clean)


def _check_metadata(owner: str, metadata: Any) -> Mapping[str, str]:
    if not isinstance(metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError(f"{owner}: metadata must map strings to strings")
    return dict(metadata)


class _CommonOptions(TypedDict, total=False):
    accept: str
    """Content types the handler accepts at the ingress (wildcards allowed, e.g. ``*/*``)."""
    content_type: str
    """Content type of the handler's output."""
    input_serde: Serde[Any]
    """Overrides the serde chosen from the input type hint."""
    output_serde: Serde[Any]
    """Overrides the serde chosen from the return type hint."""
    description: str
    """Documentation shown by Restate; defaults to the function's docstring."""
    metadata: Mapping[str, str]
    """Free-form metadata shown by the admin API."""
    inactivity_timeout: Duration
    """Ask a silent invocation to suspend after this long (restate-server 1.4+)."""
    abort_timeout: Duration
    """Abort an invocation this long after it was asked to suspend (restate-server 1.4+)."""
    journal_retention: Duration
    """Keep the journal of completed invocations this long (restate-server 1.4+)."""
    ingress_private: bool
    """Only other services may call the handler, never the HTTP ingress (restate-server 1.4+)."""
    retry_policy: RetryPolicy
    """How Restate retries failures of this handler (restate-server 1.5+)."""


class HandlerOptions(_CommonOptions, total=False):
    """Keyword options of ``@service.handler()``; each one lands in the manifest."""

    idempotency_retention: Duration
    """Remember idempotency keys this long (restate-server 1.4+)."""


class ObjectHandlerOptions(HandlerOptions, total=False):
    """Keyword options of virtual-object and workflow shared handlers."""

    enable_lazy_state: bool
    """Fetch state on demand instead of sending it all with each invocation (1.4+)."""


class WorkflowRunOptions(_CommonOptions, total=False):
    """Keyword options of ``@workflow.main()``; a workflow key is its own idempotency key."""

    enable_lazy_state: bool
    """Fetch state on demand instead of sending it all with each invocation (1.4+)."""
    workflow_retention: Duration
    """Keep a finished workflow's result and state this long (restate-server 1.4+)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Payload:
    """What goes in or out of a handler: its type hint, serde and content type.

    ``content_type`` is ``None`` for a handler that takes no input or returns ``None``.
    """

    type_hint: Any
    serde: Serde[Any]
    content_type: str | None
    is_optional: bool = False
    has_custom_serde: bool = False

    @property
    def is_void(self) -> bool:
        """Whether no payload travels at all."""
        return self.content_type is None


@dataclasses.dataclass(frozen=True, slots=True)
class Handler:
    """One registered handler, as the manifest, the endpoint and the clients see it.

    Example::

        handler = handler_of(greet)
        handler.service_name, handler.name, handler.kind   # ('Greeter', 'greet', None)
    """

    service_name: str
    service_type: ServiceType
    name: str
    kind: HandlerKind | None
    fn: Callable[..., Awaitable[Any]]
    input: Payload
    output: Payload
    options: Options

    @property
    def takes_input(self) -> bool:
        """Whether the function has an input parameter after the context."""
        return not self.input.is_void

    @property
    def handler_type(self) -> Literal["EXCLUSIVE", "SHARED", "WORKFLOW"] | None:
        """The manifest's ``ty`` for this handler (``None`` for plain services)."""
        if self.kind is None:
            return None
        return typing.cast(Literal["EXCLUSIVE", "SHARED", "WORKFLOW"], self.kind.upper())


def handler_of(target: Any) -> Handler:
    """The :class:`Handler` behind a decorated function (or the handler itself).

    Example::

        @greeter.handler()
        async def greet(ctx: Context, name: str) -> str: ...

        handler_of(greet).service_name   # 'Greeter'
    """
    if isinstance(target, Handler):
        return target
    found = getattr(target, HANDLER_ATTRIBUTE, None)
    if isinstance(found, Handler):
        return found
    raise TypeError(
        f"{target!r} is not a Perdure handler: decorate it with @service.handler() "
        "(or @object.handler(), @workflow.main()) first"
    )


def build_handler(
    fn: Callable[..., Awaitable[Any]],
    *,
    service_name: str,
    service_type: ServiceType,
    name: str | None,
    kind: HandlerKind | None,
    options: Mapping[str, Any],
) -> Handler:
    """Inspect ``fn`` and its options; raise a clear error for anything Restate would refuse."""
    opts = dict(options)
    handler_name: str = name or str(getattr(fn, "__name__", ""))
    owner = f"handler {service_name}.{handler_name}"
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"{owner}: handlers must be declared with `async def`")
    if not HANDLER_NAME.match(handler_name):
        raise ValueError(
            f"{owner}: handler names must match {HANDLER_NAME.pattern} (letters, digits, "
            "underscores; not starting with a digit); pass name=... to choose another"
        )
    _check_option_placement(owner, service_type, kind, opts)
    input_hint, has_input, output_hint = _signature_hints(fn, owner)
    accept = opts.pop("accept", None)
    content_type = opts.pop("content_type", None)
    input_serde = opts.pop("input_serde", None)
    output_serde = opts.pop("output_serde", None)
    if "description" not in opts or opts["description"] is None:
        opts["description"] = inspect.getdoc(fn)
    return Handler(
        service_name=service_name,
        service_type=service_type,
        name=handler_name,
        kind=kind,
        fn=fn,
        input=_payload(input_hint, has_input, input_serde, accept, input_side=True),
        output=_payload(
            output_hint, output_hint is not None, output_serde, content_type, input_side=False
        ),
        options=Options.build(owner, **opts),
    )


def _check_option_placement(
    owner: str, service_type: ServiceType, kind: HandlerKind | None, opts: Mapping[str, Any]
) -> None:
    # The manifest schema allows these only in some places; say so here rather than let the
    # server refuse the whole deployment at registration.
    if kind == "workflow" and opts.get("idempotency_retention") is not None:
        raise ValueError(
            f"{owner}: a workflow run handler is already idempotent by its key; use "
            "workflow_retention= instead of idempotency_retention="
        )
    if kind != "workflow" and opts.get("workflow_retention") is not None:
        raise ValueError(f"{owner}: workflow_retention= applies only to @workflow.main()")
    if service_type == "SERVICE" and opts.get("enable_lazy_state") is not None:
        raise ValueError(f"{owner}: enable_lazy_state= applies only to objects and workflows")


def _payload(
    hint: Any,
    present: bool,
    serde: Serde[Any] | None,
    content_type: str | None,
    *,
    input_side: bool,
) -> Payload:
    if not present:
        # No input parameter, or `-> None`: nothing travels, so no content type either.
        return Payload(type_hint=type(None), serde=_NONE_SERDE, content_type=None, is_optional=True)
    chosen = serde if serde is not None else serde_for(hint)
    if content_type is None:
        if isinstance(chosen, BytesSerde):
            # Raw bytes accept whatever the caller sends, and answer as an opaque stream.
            content_type = "*/*" if input_side else OCTET_STREAM
        else:
            content_type = JSON
    return Payload(
        type_hint=hint,
        serde=chosen,
        content_type=content_type,
        is_optional=accepts_none(hint) or isinstance(chosen, BytesSerde),
        has_custom_serde=serde is not None,
    )


class _NoneSerde:
    """The serde of an absent payload: nothing in, nothing out."""

    def serialize(self, obj: Any) -> bytes:
        return b""

    def deserialize(self, data: bytes) -> Any:
        return None


_NONE_SERDE = _NoneSerde()


def _signature_hints(fn: Callable[..., Any], owner: str) -> tuple[Any, bool, Any]:
    """(input hint, whether there is an input, output hint or None when it returns None)."""
    signature = inspect.signature(fn)
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required_others = [
        p
        for p in signature.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    ]
    if not 1 <= len(positional) <= 2 or required_others:
        raise TypeError(
            f"{owner}: a handler takes the context and at most one input, as in "
            "`async def handler(ctx)` or `async def handler(ctx, request)`"
        )
    has_input = len(positional) == 2
    input_hint: Any = Any
    if has_input:
        input_hint = _resolve(fn, positional[1].annotation, owner, positional[1].name)
    ret = signature.return_annotation
    output_hint: Any = Any if ret is signature.empty else _resolve(fn, ret, owner, "return")
    if output_hint is None or output_hint is type(None):
        output_hint = None
    return input_hint, has_input, output_hint


def _resolve(fn: Callable[..., Any], annotation: Any, owner: str, what: str) -> Any:
    """Evaluate one annotation; only the input and return hints matter, never the context's."""
    if annotation is inspect.Parameter.empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    namespace = dict(getattr(fn, "__globals__", {}))
    try:
        closure = inspect.getclosurevars(fn).nonlocals
    except (TypeError, ValueError):
        closure = {}
    namespace.update(closure)
    try:
        return eval(annotation, namespace)  # the standard way to resolve a string annotation
    except Exception as exc:
        raise TypeError(
            f"{owner}: cannot resolve the type hint {annotation!r} of {what!r} ({exc}); define "
            "the type at module level, or pass input_serde=/output_serde= explicitly"
        ) from exc
