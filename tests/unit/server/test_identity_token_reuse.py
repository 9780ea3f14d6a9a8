"""The request signer reuses a path's token for a few seconds; a reused token still verifies.

Signing costs ~50 µs (docs/performance.md), so a token is made once per path and reused for
TOKEN_REUSE_S; every reused token must still be inside its validity window when sent.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from perdure.sdk.identity import IdentityVerifier
from perdure.server.identity import TOKEN_LIFETIME_S, TOKEN_REUSE_S, RequestSigner


def test_a_token_is_reused_within_the_window_and_remade_after() -> None:
    now = [1_700_000_000.0]
    signer = RequestSigner(Ed25519PrivateKey.generate(), clock=lambda: now[0])
    first = signer.token("/invoke/Greeter/greet")
    now[0] += TOKEN_REUSE_S - 1
    assert signer.token("/invoke/Greeter/greet") == first
    assert signer.token("/invoke/Greeter/other") != first  # one token per audience
    now[0] += 1
    assert signer.token("/invoke/Greeter/greet") != first


def test_the_oldest_reused_token_still_passes_the_verifier() -> None:
    assert TOKEN_REUSE_S < TOKEN_LIFETIME_S
    made_at = 1_700_000_000.0
    now = [made_at]
    signer = RequestSigner(Ed25519PrivateKey.generate(), clock=lambda: now[0])
    verifier = IdentityVerifier([signer.public_key], clock=lambda: now[0])
    headers = dict(signer.headers("http://127.0.0.1:9080/invoke/Greeter/greet"))
    now[0] = made_at + TOKEN_REUSE_S - 1  # the last moment this token is handed out again
    assert dict(signer.headers("http://127.0.0.1:9080/invoke/Greeter/greet")) == headers
    verifier.verify(headers, "/invoke/Greeter/greet")
