"""Request identity: Perdure signs what it sends to deployments, and a deployment built with the
official `restate-sdk` and given Perdure's public key accepts it and refuses anything unsigned.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.helpers.processes import PerdureServer, ServiceProcess, wait_until

from perdure.sdk.identity import IdentityVerifier, parse_public_key
from perdure.server.identity import (
    DEFAULT_KEY_FILE,
    RequestSigner,
    base58_encode,
    load_or_create_key,
    public_key_id,
)

pytestmark = pytest.mark.interop


def write_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def test_base58_round_trips_through_the_sdk_key_parser() -> None:
    assert base58_encode(b"\x00\x00\x01") == "112"
    key = Ed25519PrivateKey.generate()
    parsed = parse_public_key(public_key_id(key))
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert parsed.public_bytes(*raw) == key.public_key().public_bytes(*raw)


def test_a_signed_request_passes_the_verifier_and_a_tampered_one_does_not() -> None:
    signer = RequestSigner(Ed25519PrivateKey.generate())
    verifier = IdentityVerifier([signer.public_key])
    headers = dict(signer.headers("http://127.0.0.1:9080/prefix/invoke/Chain/run"))
    verifier.verify(headers, "/invoke/Chain/run")
    with pytest.raises(Exception, match="audience"):
        verifier.verify(headers, "/invoke/Chain/other")
    other = IdentityVerifier([RequestSigner(Ed25519PrivateKey.generate()).public_key])
    with pytest.raises(Exception, match="signature"):
        other.verify(headers, "/invoke/Chain/run")
    assert "PRIVATE" not in repr(signer) and signer.public_key in repr(signer)


def test_the_data_directory_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_key(None, tmp_path)
    path = tmp_path / DEFAULT_KEY_FILE
    assert path.stat().st_mode & 0o077 == 0
    assert public_key_id(load_or_create_key(None, tmp_path)) == public_key_id(first)


@pytest.fixture
def signed_setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    key_path = tmp_path / "identity.pem"
    public = public_key_id(write_key(key_path))
    service = ServiceProcess(
        "tests.services.crash_app",
        tmp_path / "service.log",
        args=["--identity-key", public],
        env={"LEDGER": str(tmp_path / "ledger.jsonl")},
    ).start()
    server = PerdureServer(
        tmp_path / "data",
        tmp_path / "server.log",
        env={"PERDURE_REQUEST_IDENTITY_PRIVATE_KEY": str(key_path)},
    ).start()
    yield server, service, public
    server.stop()
    service.stop()


def test_an_official_sdk_deployment_with_identity_keys_accepts_perdure(signed_setup) -> None:  # type: ignore[no-untyped-def]
    server, service, public = signed_setup
    server.register(service.uri)
    r = httpx.post(
        f"{server.ingress}/Chain/run",
        json={"id": "signed", "steps": 2, "pauseMillis": 1},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert len(r.json()) == 2
    assert public in server.log()  # printed at start for services to configure
    assert "PRIVATE KEY" not in server.log()


def test_the_deployment_refuses_unsigned_and_wrongly_signed_requests(
    signed_setup, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, service, _ = signed_setup
    for headers in ({}, {"x-restate-signature-scheme": "unsigned"}):
        r = httpx.get(f"{service.uri}/discover", headers=headers, timeout=10)
        assert r.status_code == 401, (headers, r.status_code)
    stranger = RequestSigner(Ed25519PrivateKey.generate())
    r = httpx.get(f"{service.uri}/discover", headers=stranger.headers("/discover"), timeout=10)
    assert r.status_code == 401
    # A Perdure server with another key (its data directory's own) cannot register it, and says
    # why; the server stays up.
    other = PerdureServer(tmp_path / "other-data", tmp_path / "other.log").start()
    try:
        r = httpx.post(f"{other.admin}/deployments", json={"uri": service.uri}, timeout=30)
        assert 400 <= r.status_code < 600 and r.status_code != 500, r.text
        assert "401" in r.text, r.text
        generated = (tmp_path / "other-data" / DEFAULT_KEY_FILE).read_bytes()
        assert b"PRIVATE KEY" in generated
        assert public_key_id(load_or_create_key(None, tmp_path / "other-data")) in other.log()
        wait_until(lambda: httpx.get(f"{other.admin}/health").status_code == 200)
    finally:
        other.stop()


def test_a_key_that_is_not_ed25519_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "perdure.cli.main",
            "server",
            "--data-dir",
            str(tmp_path / f"d-{uuid.uuid4().hex[:6]}"),
            "--ingress-bind",
            "127.0.0.1:0",
            "--admin-bind",
            "127.0.0.1:0",
            "--request-identity-private-key",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "not an unencrypted PKCS#8 PEM private key" in done.stderr
