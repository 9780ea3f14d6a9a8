"""Bearer tokens on the ingress and the admin API: checked before a request is routed or read.

Pure: `refusal(headers, expected, ...)` returns the `PerdureError` to answer, or None to let the
request through. The ingress and the admin API each have their own token (config
`ingress_token`, `admin_token`); a request that carries the *other* port's token is told so,
which tells the sender nothing it does not already hold. Tokens are compared as bytes with
`hmac.compare_digest` (through `Secret.matches`), and no message ever quotes the token sent or
the one expected.

    error = refusal(scope["headers"], config.ingress_token, api=Api.INGRESS)
    if error is not None: ...   # 401 with WWW-Authenticate: Bearer
"""

from __future__ import annotations

from collections.abc import Iterable

from perdure.server import errors as E
from perdure.server.config import Secret
from perdure.server.errors import Api, PerdureError

_HOW = {
    Api.INGRESS: (
        "ingress",
        "--ingress-token / PERDURE_INGRESS_TOKEN",
        "Send the header `Authorization: Bearer <ingress token>`: "
        "perdure.client.Client(url, token=TOKEN), the CLI's PERDURE_INGRESS_TOKEN, or "
        'curl -H "Authorization: Bearer $PERDURE_INGRESS_TOKEN".',
    ),
    Api.ADMIN: (
        "admin API",
        "--admin-token / PERDURE_ADMIN_TOKEN",
        "Send the header `Authorization: Bearer <admin token>`: the perdure CLI reads "
        "--admin-token or PERDURE_ADMIN_TOKEN, the restate CLI RESTATE_AUTH_TOKEN, and "
        "perdure.client.Client takes an admin_token argument.",
    ),
}


def _challenge(api: Api, error: str | None) -> tuple[bytes, bytes]:
    realm = "perdure-ingress" if api is Api.INGRESS else "perdure-admin"
    value = f'Bearer realm="{realm}"'
    if error is not None:  # RFC 6750 section 3: say why a token that was sent is refused
        value += f', error="{error}"'
    return (b"www-authenticate", value.encode("ascii"))


def _authorization(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            return value
    return None


def refusal(
    headers: Iterable[tuple[bytes, bytes]],
    expected: Secret | None,
    *,
    api: Api,
    other: Secret | None = None,
) -> PerdureError | None:
    """None if the request may go on; else the 401 to answer (with its WWW-Authenticate).

    `other` is the other port's token, to tell a caller that mixed them up.

    >>> token = Secret("ingress-token-0123456789")
    >>> refusal([(b"authorization", b"Bearer ingress-token-0123456789")], token, api=Api.INGRESS)
    >>> refusal([], token, api=Api.INGRESS).status
    401
    """
    if expected is None:
        return None
    port, setting, how = _HOW[api]
    sent = _authorization(headers)
    if sent is None:
        return PerdureError(
            E.UNAUTHORIZED,
            f"This Perdure {port} requires a bearer token (the server was started with "
            f"{setting}), and the request has no Authorization header.",
            hint=how,
            headers=(_challenge(api, None),),
        )
    scheme, _, token = sent.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return PerdureError(
            E.UNAUTHORIZED,
            f"This Perdure {port} takes a bearer token, and the Authorization header is not "
            "of the form `Bearer <token>`.",
            hint=how,
            headers=(_challenge(api, "invalid_request"),),
        )
    token = token.strip()
    if expected.matches(token):
        return None
    if other is not None and other.matches(token):
        mixed = "admin" if api is Api.INGRESS else "ingress"
        return PerdureError(
            E.UNAUTHORIZED,
            f"This is the {port} port, and the request carries the {mixed} token. Send the "
            f"{port} token here ({setting}).",
            hint="",
            headers=(_challenge(api, "invalid_token"),),
        )
    return PerdureError(
        E.UNAUTHORIZED,
        f"The bearer token is not the one this Perdure {port} expects ({setting}).",
        hint=how,
        headers=(_challenge(api, "invalid_token"),),
    )


__all__ = ["refusal"]
