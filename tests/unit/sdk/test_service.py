"""Service definitions become the manifest Restate reads: kinds, options, payloads, schemas."""

from __future__ import annotations

import dataclasses
import enum
from datetime import timedelta
from typing import Any, Literal, TypedDict

import pytest

from perdure.protocol.discovery import ManifestVersion, parse_manifest
from perdure.sdk.discovery import build_manifest
from perdure.sdk.handler import RetryPolicy, handler_of
from perdure.sdk.serde import BytesSerde, JsonSerde, TypedJsonSerde
from perdure.sdk.service import Definition, Service, VirtualObject, Workflow


def manifest_of(*definitions: Definition, version: int = 4) -> dict[str, Any]:
    manifest = build_manifest(definitions, min_protocol_version=5, max_protocol_version=7)
    document = manifest.to_dict(ManifestVersion(version))
    # What we write must be what a server accepts: Perdure's own parser, as Restate's schema.
    assert parse_manifest(document) == manifest
    return document


def handler_entry(definition: Definition, name: str) -> dict[str, Any]:
    (service,) = manifest_of(definition)["services"]
    (entry,) = [h for h in service["handlers"] if h["name"] == name]
    return entry


@dataclasses.dataclass
class Address:
    street: str
    city: str = "Berlin"


@dataclasses.dataclass
class Person:
    name: str
    address: Address
    friends: list[Person] = dataclasses.field(default_factory=list)


class Shape(enum.Enum):
    CIRCLE = "circle"
    SQUARE = "square"


class Point(TypedDict):
    x: float
    y: float


# -- kinds and shapes ---------------------------------------------------------------------------


def test_a_service_lists_its_handlers_without_a_handler_type() -> None:
    greeter = Service("Greeter")

    @greeter.handler()
    async def greet(ctx: Any, name: str) -> str:
        return f"Hello {name}!"

    manifest = manifest_of(greeter)
    assert manifest["protocolMode"] == "BIDI_STREAM"
    assert (manifest["minProtocolVersion"], manifest["maxProtocolVersion"]) == (5, 7)
    assert manifest["services"] == [
        {
            "name": "Greeter",
            "ty": "SERVICE",
            "handlers": [
                {
                    "name": "greet",
                    "input": {
                        "required": True,
                        "contentType": "application/json",
                        "jsonSchema": {"type": "string"},
                    },
                    "output": {
                        "contentType": "application/json",
                        "setContentTypeIfEmpty": False,
                        "jsonSchema": {"type": "string"},
                    },
                }
            ],
        }
    ]


def test_virtual_object_handlers_are_exclusive_unless_shared() -> None:
    counter = VirtualObject("Counter")

    @counter.handler()
    async def add(ctx: Any, delta: int) -> int:
        return delta

    @counter.handler(kind="shared")
    async def get(ctx: Any) -> int:
        return 0

    @counter.shared(name="peek")
    async def look(ctx: Any) -> int:
        return 0

    (service,) = manifest_of(counter)["services"]
    assert service["ty"] == "VIRTUAL_OBJECT"
    assert [(h["name"], h["ty"]) for h in service["handlers"]] == [
        ("add", "EXCLUSIVE"),
        ("get", "SHARED"),
        ("peek", "SHARED"),
    ]


def test_a_workflow_has_one_run_handler_and_shared_ones() -> None:
    signup = Workflow("Signup")

    @signup.main()
    async def run(ctx: Any, email: str) -> bool:
        return True

    @signup.handler()
    async def confirm(ctx: Any, code: str) -> None:
        return None

    (service,) = manifest_of(signup)["services"]
    assert service["ty"] == "WORKFLOW"
    assert [(h["name"], h["ty"]) for h in service["handlers"]] == [
        ("run", "WORKFLOW"),
        ("confirm", "SHARED"),
    ]
    assert signup.run_handler.name == "run"


def test_workflow_run_is_an_alias_of_main() -> None:
    wf = Workflow("Wf")

    @wf.run(name="start")
    async def anything(ctx: Any) -> None:
        return None

    assert handler_entry(wf, "start")["ty"] == "WORKFLOW"


def test_void_input_and_output_carry_no_content_type() -> None:
    svc = Service("S")

    @svc.handler()
    async def ping(ctx: Any) -> None:
        return None

    entry = handler_entry(svc, "ping")
    assert entry["input"] == {}
    assert entry["output"] == {"setContentTypeIfEmpty": False}


def test_unannotated_payloads_are_any_json() -> None:
    svc = Service("S")

    @svc.handler()
    async def echo(ctx, value):  # type: ignore[no-untyped-def]
        return value

    entry = handler_entry(svc, "echo")
    assert entry["input"] == {
        "required": False,
        "contentType": "application/json",
        "jsonSchema": True,
    }
    assert entry["output"]["jsonSchema"] is True
    assert isinstance(handler_of(echo).input.serde, JsonSerde)


def test_bytes_handlers_accept_anything_and_answer_octet_streams() -> None:
    svc = Service("S")

    @svc.handler()
    async def raw(ctx: Any, data: bytes) -> bytes:
        return data

    entry = handler_entry(svc, "raw")
    assert entry["input"] == {"required": False, "contentType": "*/*"}
    assert entry["output"] == {
        "contentType": "application/octet-stream",
        "setContentTypeIfEmpty": False,
    }
    assert isinstance(handler_of(raw).output.serde, BytesSerde)


def test_custom_serdes_and_content_types_are_respected() -> None:
    class Upper:
        def serialize(self, obj: str) -> bytes:
            return obj.upper().encode()

        def deserialize(self, data: bytes) -> str:
            return data.decode()

    svc = Service("S")

    @svc.handler(
        accept="text/plain", content_type="text/plain", input_serde=Upper(), output_serde=Upper()
    )
    async def shout(ctx: Any, text: str) -> str:
        return text

    entry = handler_entry(svc, "shout")
    assert entry["input"] == {"required": True, "contentType": "text/plain"}
    assert entry["output"] == {"contentType": "text/plain", "setContentTypeIfEmpty": False}
    assert handler_of(shout).output.serde.serialize("hi") == b"HI"


def test_optional_input_is_not_required() -> None:
    svc = Service("S")

    @svc.handler()
    async def maybe(ctx: Any, value: int | None) -> int:
        return value or 0

    entry = handler_entry(svc, "maybe")
    assert entry["input"]["required"] is False
    assert entry["input"]["jsonSchema"] == {"type": ["integer", "null"]}


# -- JSON Schemas from type hints ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (set[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (dict[str, Any], {"type": "object"}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (Literal["a", "b"], {"enum": ["a", "b"]}),
        (Shape, {"title": "Shape", "enum": ["circle", "square"]}),
        (
            int | list[int],
            {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}]},
        ),
        (
            Point,
            {
                "title": "Point",
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
            },
        ),
    ],
)
def test_type_hints_become_json_schemas(hint: Any, schema: Any) -> None:
    svc = Service("S")

    async def fn(ctx: Any, value: Any) -> Any:
        return value

    fn.__annotations__ = {"ctx": Any, "value": hint, "return": hint}
    svc.handler(name="h")(fn)
    entry = handler_entry(svc, "h")
    assert entry["input"]["jsonSchema"] == schema
    assert entry["output"]["jsonSchema"] == schema


def test_dataclasses_become_objects_with_defs_and_recursion_terminates() -> None:
    svc = Service("S")

    @svc.handler()
    async def register(ctx: Any, person: Person) -> list[Person]:
        return [person]

    entry = handler_entry(svc, "register")
    assert entry["input"]["jsonSchema"] == {
        "title": "Person",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/Address"},
            "friends": {"type": "array", "items": {"$ref": "#"}},
        },
        "required": ["name", "address"],
        "$defs": {
            "Address": {
                "title": "Address",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                "required": ["street"],
            }
        },
    }
    output = entry["output"]["jsonSchema"]
    assert output["type"] == "array"
    assert output["items"] == {"$ref": "#/$defs/Person"}
    assert set(output["$defs"]) == {"Person", "Address"}
    assert isinstance(handler_of(register).input.serde, TypedJsonSerde)


def test_pydantic_models_use_pydantic_schemas() -> None:
    pydantic = pytest.importorskip("pydantic")

    class User(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        name: str

    svc = Service("S")

    async def fn(ctx: Any, user: Any) -> Any:
        return user

    fn.__annotations__ = {"ctx": Any, "user": User, "return": User}
    svc.handler(name="h")(fn)
    entry = handler_entry(svc, "h")
    assert entry["input"]["jsonSchema"]["properties"] == {
        "name": {"title": "Name", "type": "string"}
    }
    assert entry["input"]["required"] is True


def test_msgspec_structs_use_msgspec_schemas() -> None:
    msgspec = pytest.importorskip("msgspec")

    class Pt(msgspec.Struct):  # type: ignore[name-defined,misc]
        x: int

    svc = Service("S")

    async def fn(ctx: Any, pt: Any) -> None:
        return None

    fn.__annotations__ = {"ctx": Any, "pt": Pt, "return": None}
    svc.handler(name="h")(fn)
    schema = handler_entry(svc, "h")["input"]["jsonSchema"]
    assert schema["$defs"]["Pt"]["properties"] == {"x": {"type": "integer"}}


# -- options ------------------------------------------------------------------------------------

RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=250),
    exponentiation_factor=2,
    max_interval=10,
    max_attempts=5,
    on_max_attempts="pause",
)
RETRY_FIELDS = {
    "retryPolicyInitialInterval": 250,
    "retryPolicyMaxInterval": 10_000,
    "retryPolicyMaxAttempts": 5,
    "retryPolicyExponentiationFactor": 2.0,
    "retryPolicyOnMaxAttempts": "PAUSE",
}


def test_every_service_option_lands_in_the_manifest() -> None:
    counter = VirtualObject(
        "Counter",
        description="Counts things.",
        metadata={"team": "core"},
        inactivity_timeout=timedelta(minutes=1),
        abort_timeout=30,
        journal_retention=timedelta(days=1),
        idempotency_retention=timedelta(hours=2),
        enable_lazy_state=True,
        ingress_private=False,
        retry_policy=RETRY,
    )

    @counter.handler()
    async def add(ctx: Any, delta: int) -> int:
        return delta

    (service,) = manifest_of(counter)["services"]
    del service["handlers"]
    assert service == {
        "name": "Counter",
        "ty": "VIRTUAL_OBJECT",
        "documentation": "Counts things.",
        "metadata": {"team": "core"},
        "inactivityTimeout": 60_000,
        "abortTimeout": 30_000,
        "journalRetention": 86_400_000,
        "idempotencyRetention": 7_200_000,
        "enableLazyState": True,
        "ingressPrivate": False,
        **RETRY_FIELDS,
    }


def test_every_handler_option_lands_in_the_manifest() -> None:
    counter = VirtualObject("Counter")

    @counter.handler(
        description="Adds.",
        metadata={"owner": "ada"},
        inactivity_timeout=1.5,
        abort_timeout=timedelta(seconds=2),
        journal_retention=timedelta(hours=1),
        idempotency_retention=timedelta(minutes=3),
        enable_lazy_state=False,
        ingress_private=True,
        retry_policy=RETRY,
    )
    async def add(ctx: Any, delta: int) -> int:
        """Not used: description= wins over the docstring."""
        return delta

    entry = handler_entry(counter, "add")
    for key in ("input", "output"):
        del entry[key]
    assert entry == {
        "name": "add",
        "ty": "EXCLUSIVE",
        "documentation": "Adds.",
        "metadata": {"owner": "ada"},
        "inactivityTimeout": 1500,
        "abortTimeout": 2000,
        "journalRetention": 3_600_000,
        "idempotencyRetention": 180_000,
        "enableLazyState": False,
        "ingressPrivate": True,
        **RETRY_FIELDS,
    }


def test_workflow_retention_belongs_to_the_run_handler() -> None:
    wf = Workflow("Wf")

    @wf.main(workflow_retention=timedelta(days=7), enable_lazy_state=True)
    async def run(ctx: Any) -> None:
        return None

    entry = handler_entry(wf, "run")
    assert entry["workflowCompletionRetention"] == 7 * 86_400_000
    assert entry["enableLazyState"] is True


def test_the_docstring_documents_the_handler() -> None:
    svc = Service("S")

    @svc.handler()
    async def greet(ctx: Any) -> None:
        """Greets people.

        At length.
        """

    assert handler_entry(svc, "greet")["documentation"] == "Greets people.\n\nAt length."


# -- mistakes are caught where they are made ---------------------------------------------------


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a/b", "_"])
def test_bad_service_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        Service(name)


def test_bad_handler_names_are_refused() -> None:
    svc = Service("S")
    with pytest.raises(ValueError, match=r"pass name=\.\.\. to choose another"):

        @svc.handler(name="with-dash")
        async def fn(ctx: Any) -> None:
            return None


def test_duplicate_handler_names_are_refused() -> None:
    svc = Service("S")

    @svc.handler()
    async def greet(ctx: Any) -> None:
        return None

    with pytest.raises(ValueError, match="already has a handler named 'greet'"):
        svc.handler(name="greet")(greet)


def test_handlers_must_be_async_and_take_ctx_and_at_most_one_input() -> None:
    svc = Service("S")
    with pytest.raises(TypeError, match="async def"):
        svc.handler()(lambda ctx: None)  # type: ignore[type-var]

    async def three(ctx: Any, a: int, b: int) -> None:
        return None

    with pytest.raises(TypeError, match="at most one input"):
        svc.handler()(three)


def test_an_unresolvable_type_hint_names_the_fix() -> None:
    svc = Service("S")

    async def fn(ctx: Any, value: Any) -> None:
        return None

    fn.__annotations__ = {"value": "Missing", "return": "None"}
    with pytest.raises(TypeError, match="cannot resolve the type hint 'Missing'"):
        svc.handler()(fn)


def test_only_the_input_and_return_hints_must_resolve() -> None:
    svc = Service("S")

    async def fn(ctx: Any, value: Any) -> Any:
        return value

    fn.__annotations__ = {"ctx": "OnlyImportedWhenTypeChecking", "value": "int", "return": "int"}
    svc.handler()(fn)
    assert svc.handlers["fn"].input.type_hint is int


def test_option_misplacements_are_refused() -> None:
    wf = Workflow("Wf")

    async def fn(ctx: Any) -> None:
        return None

    with pytest.raises(ValueError, match="use workflow_retention="):
        wf.main(idempotency_retention=5)(fn)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"applies only to @workflow\.main"):
        wf.handler(workflow_retention=5)(fn)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="only to objects and workflows"):
        Service("S").handler(enable_lazy_state=True)(fn)  # type: ignore[call-arg]


def test_bad_option_values_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        Service("S", inactivity_timeout=-1)
    with pytest.raises(TypeError, match="timedelta or a number of seconds"):
        Service("S", abort_timeout="5s")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        Service("S", metadata={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="1 or more"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="'pause' or 'kill'"):
        RetryPolicy(on_max_attempts="stop")  # type: ignore[arg-type]


def test_a_workflow_without_run_handler_cannot_be_served() -> None:
    wf = Workflow("Wf")

    @wf.handler()
    async def status(ctx: Any) -> str:
        return ""

    with pytest.raises(ValueError, match=r"decorate one with @wf\.main"):
        build_manifest([wf], min_protocol_version=5, max_protocol_version=7)


def test_a_workflow_has_only_one_run_handler() -> None:
    wf = Workflow("Wf")

    @wf.main()
    async def run(ctx: Any) -> None:
        return None

    with pytest.raises(ValueError, match="already has a run handler"):
        wf.main(name="again")(run)


def test_empty_definitions_and_duplicate_services_cannot_be_served() -> None:
    with pytest.raises(ValueError, match="has no handlers"):
        build_manifest([Service("S")], min_protocol_version=5, max_protocol_version=7)
    a, b = Service("S"), Service("S")
    for svc in (a, b):
        svc.handler(name="h")(_noop)
    with pytest.raises(ValueError, match="two services are named 'S'"):
        build_manifest([a, b], min_protocol_version=5, max_protocol_version=7)


async def _noop(ctx: Any) -> None:
    return None


# -- decorated functions and proxies ------------------------------------------------------------


async def test_decorated_handlers_stay_callable_and_know_their_definition() -> None:
    svc = Service("Greeter")

    @svc.handler()
    async def greet(ctx: Any, name: str) -> str:
        return f"Hello {name}!"

    assert await greet(None, "Ada") == "Hello Ada!"
    handler = handler_of(greet)
    assert (handler.service_name, handler.name, handler.kind) == ("Greeter", "greet", None)
    with pytest.raises(TypeError, match="is not a Perdure handler"):
        handler_of(_noop)


def test_one_function_can_serve_two_services() -> None:
    a, b = Service("A"), Service("B")
    on_a = a.handler(name="h")(_noop)
    on_b = b.handler(name="h")(_noop)
    assert handler_of(on_a).service_name == "A"
    assert handler_of(on_b).service_name == "B"


class RecordingContext:
    """Stands in for a handler context: records which call method was used, with what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> str:
            self.calls.append((method, args, kwargs))
            return "future"

        return record


def test_proxies_call_through_the_context_with_the_handler_and_key() -> None:
    greeter, counter, signup = Service("Greeter"), VirtualObject("Counter"), Workflow("Signup")
    greeter.handler(name="greet")(_echo)
    counter.handler(name="add")(_echo)
    signup.main(name="run")(_echo)
    ctx = RecordingContext()

    assert greeter.proxy(ctx).greet("Ada") == "future"
    counter.proxy(ctx, "k").add(1, idempotency_key="once")
    signup.proxy(ctx, "w").run.send("x", delay=timedelta(seconds=5), headers={"h": "v"})

    (m1, a1, k1), (m2, a2, k2), (m3, a3, k3) = ctx.calls
    assert (m1, a1[1:], k1) == (
        "service_call",
        ("Ada",),
        {"idempotency_key": None, "headers": None},
    )
    assert a1[0] is greeter.handlers["greet"]
    assert (m2, a2[1:], k2["idempotency_key"]) == ("object_call", ("k", 1), "once")
    assert (m3, a3[1:]) == ("workflow_send", ("w", "x"))
    assert k3 == {
        "send_delay": timedelta(seconds=5),
        "idempotency_key": None,
        "headers": {"h": "v"},
    }


def test_proxies_name_the_handlers_that_exist() -> None:
    greeter = Service("Greeter")
    greeter.handler(name="greet")(_echo)
    greeter.handler(name="ping")(_noop)
    proxy = greeter.proxy(RecordingContext())
    with pytest.raises(AttributeError, match="no handler 'gret' \\(handlers: greet, ping\\)"):
        _ = proxy.gret
    with pytest.raises(TypeError, match="takes no input"):
        proxy.ping("unexpected")
    assert sorted(dir(proxy)) == ["greet", "ping"]


def test_keys_must_be_strings() -> None:
    counter = VirtualObject("Counter")
    counter.handler(name="add")(_echo)
    with pytest.raises(TypeError, match="keys are strings"):
        counter.proxy(RecordingContext(), 42)  # type: ignore[arg-type]


async def _echo(ctx: Any, value: Any) -> Any:
    return value
