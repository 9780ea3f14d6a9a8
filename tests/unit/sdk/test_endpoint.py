"""The ASGI endpoint over HTTP/1.1, in process: discovery, routing, content types, identity."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import perdure.sdk.endpoint as endpoint_module
from perdure.sdk.endpoint import Endpoint, app
from perdure.sdk.identity import normalise_path, parse_public_key
from perdure.sdk.service import Service, VirtualObject

ALL_MANIFESTS = ", ".join(
    f"application/vnd.restate.endpointmanifest.v{v}+json" for v in (1, 2, 3, 4)
)
V6 = "application/vnd.restate.invocation.v6"


def make_services() -> list[Any]:
    greeter = Service("Greeter", description="Says hello.")

    @greeter.handler()
    async def greet(ctx: Any, name: str) -> str:
        return f"Hello {name}!"

    counter = VirtualObject("Counter")

    @counter.handler()
    async def add(ctx: Any, delta: int) -> int:
        return delta

    return [greeter, counter]


class StubRuntime:
    """Stands in for perdure.sdk.invocation.run_invocation: echoes what it reads, upper-cased."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, spec: Any, **kwargs: Any) -> None:
        self.calls.append({"spec": spec, **kwargs})
        receive: Callable[[], Awaitable[bytes | None]] = kwargs["receive"]
        send: Callable[[bytes], Awaitable[None]] = kwargs["send"]
        while (chunk := await receive()) is not None:
            await send(chunk.upper())


def client_for(application: Endpoint) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://deployment"
    )


@pytest.fixture
def runtime() -> StubRuntime:
    return StubRuntime()


@pytest.fixture
async def client(runtime: StubRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app(make_services(), runtime=runtime)) as c:
        yield c


# -- discovery ----------------------------------------------------------------------------------


async def test_discovery_answers_the_newest_manifest_the_server_accepts(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/discover", headers={"accept": ALL_MANIFESTS})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.restate.endpointmanifest.v4+json"
    assert response.headers["x-restate-server"].startswith("perdure-sdk-python/")
    manifest = response.json()
    assert manifest["protocolMode"] == "REQUEST_RESPONSE"  # asked over HTTP/1.1
    assert (manifest["minProtocolVersion"], manifest["maxProtocolVersion"]) == (5, 7)
    assert [s["name"] for s in manifest["services"]] == ["Greeter", "Counter"]
    assert manifest["services"][0]["documentation"] == "Says hello."


@pytest.mark.parametrize("path", ["/discover", "/discovery", "/mounted/under/discover"])
async def test_discovery_answers_under_any_prefix(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"accept": ALL_MANIFESTS})
    assert response.status_code == 200


async def test_without_accept_header_the_answer_is_v2_as_the_official_sdk_gives(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/discover", headers={"accept": ""})
    assert response.headers["content-type"] == "application/vnd.restate.endpointmanifest.v2+json"


async def test_a_wildcard_accept_gets_the_newest_manifest(client: httpx.AsyncClient) -> None:
    response = await client.get("/discover", headers={"accept": "*/*"})
    assert response.headers["content-type"] == "application/vnd.restate.endpointmanifest.v4+json"


async def test_a_v1_manifest_leaves_out_documentation(client: httpx.AsyncClient) -> None:
    accept = "application/vnd.restate.endpointmanifest.v1+json"
    response = await client.get("/discover", headers={"accept": accept})
    assert response.headers["content-type"] == accept
    assert "documentation" not in response.json()["services"][0]


async def test_unsupported_manifest_versions_get_415(client: httpx.AsyncClient) -> None:
    accept = "application/vnd.restate.endpointmanifest.v9+json"
    response = await client.get("/discover", headers={"accept": accept})
    assert response.status_code == 415
    assert "unsupported discovery version" in response.text
    assert "endpointmanifest.v4+json" in response.text


async def test_options_an_old_server_cannot_read_are_refused_not_dropped() -> None:
    svc = Service("Slow", inactivity_timeout=timedelta(minutes=5))
    svc.handler(name="run")(_noop)
    async with client_for(app([svc], runtime=StubRuntime())) as c:
        accept = "application/vnd.restate.endpointmanifest.v2+json"
        response = await c.get("/discover", headers={"accept": accept})
    assert response.status_code == 406
    assert response.text == (
        "service Slow sets inactivityTimeout needs endpoint manifest v3 (restate-server 1.4 or "
        "newer), but the server accepts at most v2. Upgrade the server, or remove the option."
    )


async def test_protocol_mode_can_be_forced() -> None:
    async with client_for(app(make_services(), protocol_mode="bidi")) as c:
        response = await c.get("/discover", headers={"accept": ALL_MANIFESTS})
    assert response.json()["protocolMode"] == "BIDI_STREAM"


async def test_discovery_is_a_get(client: httpx.AsyncClient) -> None:
    assert (await client.post("/discover")).status_code == 405


async def test_health_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_unknown_paths_explain_what_the_endpoint_is(client: httpx.AsyncClient) -> None:
    response = await client.get("/Greeter/greet")
    assert response.status_code == 404
    assert "GETs /discover and POSTs /invoke/{service}/{handler}" in response.text


# -- invocations --------------------------------------------------------------------------------


async def test_an_invocation_runs_the_runtime_with_the_negotiated_version(
    client: httpx.AsyncClient, runtime: StubRuntime
) -> None:
    response = await client.post(
        "/invoke/Greeter/greet", content=b"frames", headers={"content-type": V6}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == V6
    assert response.headers["x-restate-server"].startswith("perdure-sdk-python/")
    assert response.content == b"FRAMES"
    (call,) = runtime.calls
    assert call["protocol_version"] == 6
    assert call["request_response"] is True  # HTTP/1.1 and no forced mode
    assert ("content-type", V6) in call["headers"]
    spec = call["spec"]
    assert (spec.service_name, spec.handler_name) == ("Greeter", "greet")
    assert (spec.service_type, spec.handler_type) == ("SERVICE", None)
    assert await spec.fn(None, "Ada") == "Hello Ada!"
    assert spec.decode_input(b'"Ada"') == "Ada"
    assert spec.encode_output("hi") == b'"hi"'


async def test_forced_bidi_mode_streams_even_over_http1(runtime: StubRuntime) -> None:
    async with client_for(app(make_services(), protocol_mode="bidi", runtime=runtime)) as c:
        await c.post("/invoke/Counter/add", content=b"x", headers={"content-type": V6})
    (call,) = runtime.calls
    assert call["request_response"] is False
    assert (call["spec"].service_type, call["spec"].handler_type) == ("VIRTUAL_OBJECT", "EXCLUSIVE")


async def test_input_that_does_not_decode_is_a_terminal_400(
    client: httpx.AsyncClient, runtime: StubRuntime
) -> None:
    await client.post("/invoke/Counter/add", content=b"", headers={"content-type": V6})
    decode = runtime.calls[0]["spec"].decode_input
    with pytest.raises(Exception, match=r"cannot read the input of Counter\.add") as info:
        decode(b'"not a number"')
    # A TerminalError (once perdure.sdk.errors exists) with status 400; never a retryable error.
    assert getattr(info.value, "status_code", 400) == 400


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "has no content-type"),
        ("application/json", "is not a Restate invocation stream"),
        ("application/vnd.restate.invocation.v4", "protocol version v4 is not supported"),
        ("application/vnd.restate.invocation.v99", "upgrade this deployment's SDK"),
    ],
)
async def test_unsupported_content_types_get_415(
    client: httpx.AsyncClient, runtime: StubRuntime, content_type: str | None, message: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/invoke/Greeter/greet", content=b"x", headers=headers)
    assert response.status_code == 415
    assert message in response.text
    assert runtime.calls == []


@pytest.mark.parametrize("version", [5, 6, 7])
async def test_every_supported_protocol_version_is_accepted(
    client: httpx.AsyncClient, version: int
) -> None:
    content_type = f"application/vnd.restate.invocation.v{version}"
    response = await client.post("/invoke/Greeter/greet", headers={"content-type": content_type})
    assert (response.status_code, response.headers["content-type"]) == (200, content_type)


async def test_unknown_services_and_handlers_get_404_naming_what_exists(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/invoke/Nope/greet", headers={"content-type": V6})
    assert response.status_code == 404
    assert "services: Greeter, Counter" in response.text
    assert "re-register this deployment" in response.text
    response = await client.post("/invoke/Greeter/nope", headers={"content-type": V6})
    assert response.status_code == 404
    assert "(handlers: greet)" in response.text


async def test_invocations_are_posts(client: httpx.AsyncClient) -> None:
    assert (await client.get("/invoke/Greeter/greet")).status_code == 405


async def test_a_failing_runtime_still_ends_the_response() -> None:
    async def broken(spec: Any, **kwargs: Any) -> None:
        await kwargs["send"](b"partial")
        raise RuntimeError("bug in the runtime")

    async with client_for(app(make_services(), runtime=broken)) as c:
        response = await c.post("/invoke/Greeter/greet", headers={"content-type": V6})
    assert (response.status_code, response.content) == (200, b"partial")


async def test_a_server_that_goes_away_cancels_the_attempt() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def waits_forever(spec: Any, **kwargs: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    application = app(make_services(), protocol_mode="bidi", runtime=waits_forever)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": b"start", "more_body": False})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "2",
        "method": "POST",
        "path": "/invoke/Greeter/greet",
        "headers": [(b"content-type", V6.encode())],
    }
    task = asyncio.create_task(application(scope, inbox.get, send))
    await started.wait()
    inbox.put_nowait({"type": "http.disconnect"})
    await asyncio.wait_for(task, timeout=5)
    assert cancelled.is_set()
    assert sent[0]["status"] == 200


async def test_lifespan_events_are_acknowledged() -> None:
    application = app(make_services())
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await application({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_a_missing_runtime_module_is_reported_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise ModuleNotFoundError(name="something.else")

    monkeypatch.setattr(endpoint_module.importlib, "import_module", missing)
    with pytest.raises(ModuleNotFoundError):
        endpoint_module._default_runtime()


def test_app_refuses_an_unknown_protocol_mode() -> None:
    with pytest.raises(ValueError, match="'bidi' or 'request_response'"):
        app(make_services(), protocol_mode="http3")  # type: ignore[arg-type]


# -- request identity ---------------------------------------------------------------------------

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _ALPHABET[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """What a Restate server does with its request-identity private key."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = "publickeyv1_" + base58(raw)

    def token(self, aud: str, *, exp_in: float = 60, nbf_in: float = -60, **extra: Any) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "EdDSA", "kid": self.public}
        claims = {"aud": aud, "exp": now + exp_in, "iat": now, "nbf": now + nbf_in, **extra}
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        return f"{signing_input}.{b64url(self.key.sign(signing_input.encode()))}"

    def headers(self, token: str) -> dict[str, str]:
        return {"x-restate-signature-scheme": "v1", "x-restate-jwt-v1": token, "content-type": V6}


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
async def guarded(signer: Signer, runtime: StubRuntime) -> AsyncIterator[httpx.AsyncClient]:
    other = Signer()  # a second configured key: any one of them may sign
    application = app(make_services(), identity_keys=[other.public, signer.public], runtime=runtime)
    async with client_for(application) as c:
        yield c


async def test_requests_signed_by_a_configured_key_are_served(
    guarded: httpx.AsyncClient, signer: Signer, runtime: StubRuntime
) -> None:
    path = "/invoke/Greeter/greet"
    response = await guarded.post(path, content=b"x", headers=signer.headers(signer.token(path)))
    assert response.status_code == 200
    assert len(runtime.calls) == 1
    response = await guarded.get("/discover", headers=signer.headers(signer.token("/discover")))
    assert response.status_code == 200


async def test_the_audience_ignores_the_mount_prefix(
    guarded: httpx.AsyncClient, signer: Signer
) -> None:
    token = signer.token("/invoke/Greeter/greet")
    response = await guarded.post("/svc/invoke/Greeter/greet", headers=signer.headers(token))
    assert response.status_code == 200


def _tampered(token: str) -> str:
    head, claims, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["aud"] = "/invoke/Counter/add"
    return f"{head}.{b64url(json.dumps(forged).encode())}.{signature}"


@pytest.mark.parametrize(
    ("make_headers", "message"),
    [
        (lambda s: {}, "missing header x-restate-signature-scheme"),
        (lambda s: {"x-restate-signature-scheme": "unsigned"}, "got an unsigned request"),
        (lambda s: {"x-restate-signature-scheme": "v2"}, "unexpected value 'v2'"),
        (lambda s: {"x-restate-signature-scheme": "v1"}, "missing header x-restate-jwt-v1"),
        (lambda s: s.headers("not.a.jwt"), "invalid JWT"),
        (lambda s: s.headers(Signer().token("/invoke/Greeter/greet")), "matches none of"),
        (lambda s: s.headers(s.token("/invoke/Greeter/greet", exp_in=-5)), "has expired"),
        (lambda s: s.headers(s.token("/invoke/Greeter/greet", nbf_in=30)), "not valid yet"),
        (lambda s: s.headers(s.token("/invoke/Counter/add")), "the audience is"),
        (lambda s: s.headers(_tampered(s.token("/invoke/Greeter/greet"))), "matches none of"),
    ],
)
async def test_requests_not_signed_by_a_configured_key_get_401(
    guarded: httpx.AsyncClient,
    signer: Signer,
    runtime: StubRuntime,
    make_headers: Callable[[Signer], dict[str, str]],
    message: str,
) -> None:
    response = await guarded.post("/invoke/Greeter/greet", headers=make_headers(signer))
    assert response.status_code == 401
    assert message in response.text
    assert runtime.calls == []


async def test_a_token_missing_a_required_claim_is_refused(
    guarded: httpx.AsyncClient, signer: Signer
) -> None:
    now = int(time.time())
    header = b64url(json.dumps({"alg": "EdDSA"}).encode())
    claims = b64url(json.dumps({"aud": "/discover", "exp": now + 60, "nbf": now}).encode())
    signature = b64url(signer.key.sign(f"{header}.{claims}".encode()))
    response = await guarded.get(
        "/discover", headers=signer.headers(f"{header}.{claims}.{signature}")
    )
    assert response.status_code == 401
    assert "missing required claim 'iat'" in response.text


async def test_health_needs_no_signature(guarded: httpx.AsyncClient) -> None:
    assert (await guarded.get("/health")).status_code == 200


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("ChjENKeMvCtRnqG2mrBK1HmPKufgFUc98K8B3ononQvp", "start with 'publickeyv1_'"),
        ("publickeyv1_0OIl", "not valid base58"),
        ("publickeyv1_abc", "Ed25519 keys have 32"),
    ],
)
def test_bad_identity_keys_are_refused_when_the_app_is_built(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        app(make_services(), identity_keys=[key])


def test_the_official_sdk_test_key_parses() -> None:
    # The key sdk-shared-core's own tests use.
    app(make_services(), identity_keys=["publickeyv1_ChjENKeMvCtRnqG2mrBK1HmPKufgFUc98K8B3ononQvp"])


async def _noop(ctx: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("path", "audience"),
    # The table of sdk-shared-core's request_identity tests.
    [
        ("/invoke/a/b", "/invoke/a/b"),
        ("/foo/invoke/a/b", "/invoke/a/b"),
        ("/foo/bar/invoke/a/b", "/invoke/a/b"),
        ("/discover", "/discover"),
        ("/foo/discover", "/discover"),
        ("/foo/bar/discover", "/discover"),
        ("/foo", "/foo"),
        ("/invoke", "/invoke"),
        ("/foo/invoke", "/foo/invoke"),
        ("/invoke/a", "/invoke/a"),
        ("/foo/invoke/a", "/foo/invoke/a"),
        ("", ""),
        ("/", "/"),
        ("//", "//"),
        ("///", "///"),
        ("////", "////"),
        ("discover", "discover"),
        ("foo/discover", "/discover"),
        ("foo/invoke/a/b", "/invoke/a/b"),
    ],
)
def test_the_audience_is_normalised_as_restate_does(path: str, audience: str) -> None:
    assert normalise_path(path) == audience


def test_base58_keeps_leading_zero_bytes() -> None:
    raw = b"\0\0" + bytes(range(1, 31))
    key = parse_public_key("publickeyv1_" + base58(raw))
    assert key.public_bytes(Encoding.Raw, PublicFormat.Raw) == raw
