"""Request identity: check that a request was signed by a configured Restate server key.

Restate signs each request to a deployment with an Ed25519 key and sends the signature as a
JWT in ``x-restate-jwt-v1`` (with ``x-restate-signature-scheme: v1``). The deployment is
configured with the server's public keys as ``publickeyv1_<base58 of the 32 key bytes>``. The
rules below are those of restate sdk-shared-core ``src/request_identity.rs``: algorithm EdDSA,
claims ``aud``, ``exp``, ``iat`` and ``nbf`` required, no leeway, and the audience is the
request path cut down to ``/invoke/{service}/{handler}`` or ``/discover``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["IdentityError", "IdentityVerifier", "parse_public_key"]

SCHEME_HEADER = "x-restate-signature-scheme"
JWT_HEADER = "x-restate-jwt-v1"
KEY_PREFIX = "publickeyv1_"

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(_BASE58)}
_REQUIRED_CLAIMS = ("aud", "exp", "iat", "nbf")


class IdentityError(Exception):
    """The request is not signed by any configured key; the message says what was wrong."""


def _base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"{char!r} is not a base58 character")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_zeros = len(text) - len(text.lstrip("1"))  # base58 writes each zero byte as '1'
    return b"\x00" * leading_zeros + body


def parse_public_key(key: str) -> Ed25519PublicKey:
    """Read a ``publickeyv1_...`` key as printed by ``restate-server`` / the Restate Cloud UI.

    Example::

        parse_public_key("publickeyv1_ChjENKeMvCtRnqG2mrBK1HmPKufgFUc98K8B3ononQvp")
    """
    if not key.startswith(KEY_PREFIX):
        raise ValueError(f"identity keys start with {KEY_PREFIX!r}; got {key[:20]!r}")
    try:
        raw = _base58_decode(key[len(KEY_PREFIX) :])
    except ValueError as exc:
        raise ValueError(f"identity key {key!r} is not valid base58: {exc}") from None
    if len(raw) != 32:
        raise ValueError(f"identity key {key!r} decodes to {len(raw)} bytes; Ed25519 keys have 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def normalise_path(path: str) -> str:
    """The JWT audience for a request path: the part from ``/invoke/...`` or ``/discover``.

    A deployment may be mounted under a prefix the server knows but the SDK does not, so both
    sides compare only the tail.

    Example::

        normalise_path("/prefix/invoke/Greeter/greet")   # '/invoke/Greeter/greet'
    """
    slashes = [i for i, c in enumerate(path) if c == "/"]
    if len(slashes) >= 3 and path[slashes[-3] : slashes[-2]] == "/invoke":
        return path[slashes[-3] :]
    if slashes and path[slashes[-1] :] == "/discover":
        return path[slashes[-1] :]
    return path


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class IdentityVerifier:
    """Checks request signatures against a set of keys; with no keys it accepts everything.

    Example::

        verifier = IdentityVerifier(["publickeyv1_..."])
        verifier.verify({"x-restate-signature-scheme": "v1", "x-restate-jwt-v1": token},
                        "/invoke/Greeter/greet")   # raises IdentityError when not signed
    """

    def __init__(self, keys: Sequence[str] = (), *, clock: Callable[[], float] = time.time) -> None:
        if isinstance(keys, str):
            raise TypeError("identity_keys is a list of keys, not one string")
        self._keys = [parse_public_key(k) for k in keys]
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (and so whether requests are checked at all)."""
        return bool(self._keys)

    def verify(self, headers: Mapping[str, str], path: str) -> None:
        """Raise :class:`IdentityError` unless ``headers`` carry a valid signature for ``path``.

        ``headers`` must have lower-case names.
        """
        if not self._keys:
            return
        scheme = headers.get(SCHEME_HEADER)
        if scheme is None:
            raise IdentityError(
                f"missing header {SCHEME_HEADER}: this endpoint only accepts requests signed by "
                "a Restate server whose public key it was given (identity_keys)"
            )
        if scheme == "unsigned":
            raise IdentityError(
                "got an unsigned request, but this endpoint only accepts requests signed with "
                "one of its identity_keys; configure the server's request identity private key"
            )
        if scheme != "v1":
            raise IdentityError(f"bad {SCHEME_HEADER} header, unexpected value {scheme!r}")
        token = headers.get(JWT_HEADER)
        if token is None:
            raise IdentityError(f"missing header {JWT_HEADER}")
        self._check_jwt(token, normalise_path(path))

    def _check_jwt(self, token: str, audience: str) -> None:
        parts = token.split(".")
        if len(parts) != 3:
            raise IdentityError("invalid JWT: expected three dot-separated parts")
        try:
            header = json.loads(_b64url(parts[0]))
            claims = json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except (binascii.Error, ValueError) as exc:
            raise IdentityError(f"invalid JWT: {exc}") from None
        if not isinstance(header, dict) or header.get("alg") != "EdDSA":
            raise IdentityError("invalid JWT: the algorithm must be EdDSA")
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not any(_signature_matches(key, signature, signed) for key in self._keys):
            raise IdentityError("invalid JWT: the signature matches none of the identity_keys")
        self._check_claims(claims, audience)

    def _check_claims(self, claims: Any, audience: str) -> None:
        if not isinstance(claims, dict):
            raise IdentityError("invalid JWT: the claims are not a JSON object")
        for name in _REQUIRED_CLAIMS:
            if name not in claims:
                raise IdentityError(f"invalid JWT: missing required claim {name!r}")
        exp, nbf = claims["exp"], claims["nbf"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, nbf)):
            raise IdentityError("invalid JWT: exp and nbf must be numbers")
        now = self._clock()
        if exp < now:
            raise IdentityError("invalid JWT: the token has expired (check both clocks)")
        if nbf > now:
            raise IdentityError("invalid JWT: the token is not valid yet (check both clocks)")
        aud = claims["aud"]
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise IdentityError(f"invalid JWT: the audience is {aud!r}, not {audience!r}")


def _signature_matches(key: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        return False
    return True
