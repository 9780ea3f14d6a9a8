"""Request identity end to end: restate-server signs with its Ed25519 key, the SDK checks it.

The endpoint is configured with the server's public key (``publickeyv1_...``): the signing
server can register it and invoke through it; an endpoint expecting another key refuses the
same server, and the registration fails with the endpoint's 401 in the admin's answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from tests.helpers.restate import RestateServer
from tests.interop.example_scenarios import example

from perdure.client import Client
from perdure.testing import ServiceEndpoint

pytestmark = pytest.mark.interop

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The ``publickeyv1_<base58>`` form restate-server prints for its signing key."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    number, text = int.from_bytes(raw, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        text = _BASE58[digit] + text
    return "publickeyv1_" + "1" * (len(raw) - len(raw.lstrip(b"\0"))) + text


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def signing_restate(
    tmp_path_factory: pytest.TempPathFactory, signing_key: Ed25519PrivateKey
) -> Iterator[RestateServer]:
    work = Path(tmp_path_factory.mktemp("restate-signed"))
    pem = work / "identity.pem"
    pem.write_bytes(signing_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    server = RestateServer(work / "server", identity_key_pem=pem).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_signed_server_registers_and_invokes(
    signing_restate: RestateServer, signing_key: Ed25519PrivateKey
) -> None:
    counter = example("counter")
    with ServiceEndpoint(counter.services, identity_keys=[public_key_text(signing_key)]) as ep:
        signing_restate.register(ep.uri)
        with Client(signing_restate.ingress, admin_url=signing_restate.admin, timeout=30) as c:
            assert c.object(counter.counter, "signed").add(7) == 7


def test_an_endpoint_expecting_another_key_refuses_the_server(
    signing_restate: RestateServer,
) -> None:
    counter = example("counter")
    other = public_key_text(Ed25519PrivateKey.generate())
    with ServiceEndpoint(counter.services, identity_keys=[other]) as endpoint:
        answer = httpx.post(
            f"{signing_restate.admin}/deployments",
            json={"uri": endpoint.uri, "force": True},
            timeout=30,
        )
    assert answer.status_code >= 400
    assert "401" in answer.text
    assert "identity_keys" in answer.text
