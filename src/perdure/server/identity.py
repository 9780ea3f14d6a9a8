"""Request identity: the server signs every request it sends to a deployment.

Restate's scheme (v1), which the official SDKs verify when given ``identity_keys``:

- the server holds an Ed25519 private key; the deployment is configured with its public key,
  written ``publickeyv1_<base58 of the 32 raw key bytes>``;
- each request carries ``x-restate-signature-scheme: v1`` and ``x-restate-jwt-v1: <JWT>``, a
  JWT signed with EdDSA whose header names the key (``kid``) and whose claims are ``aud`` (the
  request path: ``/invoke/{service}/{handler}`` or ``/discover``), ``iat``, ``nbf`` and ``exp``.

Without a key the server says so with ``x-restate-signature-scheme: unsigned``, as Restate does.

The key is a PKCS#8 PEM file given by ``--request-identity-private-key`` (env
``PERDURE_REQUEST_IDENTITY_PRIVATE_KEY``); without one, `load_or_create_key` keeps a key in the
data directory (``request-identity.pem``, mode 0600), created on the first start. The private
key never appears in a log line; only the public key is printed, for services to configure.

Example::

    signer = RequestSigner(load_or_create_key(None, Path("perdure-data")))
    signer.public_key                           # 'publickeyv1_...'
    signer.headers("http://127.0.0.1:9080/invoke/Greeter/greet")
    # [('x-restate-signature-scheme', 'v1'), ('x-restate-jwt-v1', 'eyJ...')]
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from perdure.sdk.identity import JWT_HEADER, KEY_PREFIX, SCHEME_HEADER, normalise_path

__all__ = [
    "DEFAULT_KEY_FILE",
    "IdentityKeyError",
    "RequestSigner",
    "base58_encode",
    "load_or_create_key",
    "public_key_id",
    "unsigned_headers",
]

DEFAULT_KEY_FILE = "request-identity.pem"

# How long a token is valid on either side of the moment it is made. Restate's verifiers allow
# no leeway, so a little room is given for clock skew between server and deployment; a token
# is re-made every TOKEN_REUSE_S at the latest, so a short life costs little.
TOKEN_LIFETIME_S = 60
# A token made less than this long ago is sent again instead of signing a new one: it is still
# valid for at least TOKEN_LIFETIME_S - TOKEN_REUSE_S seconds. Signing costs ~50 µs, about 5 %
# of the server CPU of a whole greeter call (docs/performance.md).
TOKEN_REUSE_S = 10
# Tokens kept (one per request path); the cache starts over when it is full.
TOKEN_CACHE_SIZE = 4096

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class IdentityKeyError(Exception):
    """The configured key cannot be used; the message names the file and the fix."""


def base58_encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, as used in ``publickeyv1_`` key ids.

    Example::

        base58_encode(b"\\x00\\x01")   # '12'
    """
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(_BASE58[rest])
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(digits))


def public_key_id(key: Ed25519PrivateKey) -> str:
    """The ``publickeyv1_...`` id of the key's public half (what a deployment is given)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base58_encode(raw)


def _read_key(path: Path) -> Ed25519PrivateKey:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise IdentityKeyError(
            f"cannot read the request identity key {path}: {exc.strerror}; fix "
            "--request-identity-private-key / PERDURE_REQUEST_IDENTITY_PRIVATE_KEY"
        ) from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise IdentityKeyError(
            f"the request identity key {path} is not an unencrypted PKCS#8 PEM private key; "
            "make one with: openssl genpkey -algorithm ed25519 -out key.pem"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityKeyError(
            f"the request identity key {path} is not an Ed25519 key; Restate's request identity "
            "needs one: openssl genpkey -algorithm ed25519 -out key.pem"
        )
    return key


def load_or_create_key(configured: Path | None, data_dir: Path | None) -> Ed25519PrivateKey:
    """The configured key, or the data directory's own, created (mode 0600) if missing.

    With no data directory (a server on in-memory storage) a fresh key lives in memory only.
    """
    if configured is not None:
        return _read_key(configured)
    if data_dir is None:
        return Ed25519PrivateKey.generate()
    path = data_dir / DEFAULT_KEY_FILE
    if path.exists():
        return _read_key(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".pem.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)  # whole or absent, even if the process dies here
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: dict[str, object]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def unsigned_headers() -> list[tuple[str, str]]:
    """What a server without a key sends: it says it did not sign."""
    return [(SCHEME_HEADER, "unsigned")]


class RequestSigner:
    """Makes the identity headers of one request; holds the private key."""

    def __init__(self, key: Ed25519PrivateKey, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock
        self.public_key = public_key_id(key)
        self._header = _json_segment({"typ": "JWT", "alg": "EdDSA", "kid": self.public_key})
        self._recent: dict[str, tuple[int, str]] = {}  # audience -> (iat, token)

    def __repr__(self) -> str:  # never the private key, even in a traceback
        return f"RequestSigner({self.public_key})"

    def token(self, path: str) -> str:
        """A JWT for a request to ``path`` (the audience is the path's ``/invoke/..`` tail)."""
        now = int(self._clock())
        audience = normalise_path(path)
        recent = self._recent.get(audience)
        if recent is not None and 0 <= now - recent[0] < TOKEN_REUSE_S:
            return recent[1]
        claims = {
            "aud": audience,
            "iat": now,
            "nbf": now - TOKEN_LIFETIME_S,
            "exp": now + TOKEN_LIFETIME_S,
        }
        signed = f"{self._header}.{_json_segment(claims)}"
        signature = self._key.sign(signed.encode("ascii"))
        token = f"{signed}.{_b64url(signature)}"
        if len(self._recent) >= TOKEN_CACHE_SIZE:
            self._recent.clear()
        self._recent[audience] = (now, token)
        return token

    def headers(self, url: str) -> list[tuple[str, str]]:
        """The headers that sign a request to ``url`` (a full URL or a path)."""
        path = urlsplit(url).path or "/"
        return [(SCHEME_HEADER, "v1"), (JWT_HEADER, self.token(path))]
