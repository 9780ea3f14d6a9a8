"""The invoker checks the headers it sends over HTTP/2 itself (h2's per-stream check is off):
each pair once, with an error that names the header and the fix."""

from __future__ import annotations

import pytest

from perdure.server.invoker import transport
from perdure.server.invoker.transport import TransportError, checked_headers

URL = "http://127.0.0.1:9080/invoke/Greeter/greet"


def test_ordinary_headers_pass_lower_cased_without_hop_by_hop_ones() -> None:
    headers = [("Content-Type", "application/restate"), ("Connection", "close"), ("X-Api-Key", "k")]
    assert checked_headers(headers, URL) == [
        ("content-type", "application/restate"),
        ("x-api-key", "k"),
    ]


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        (":path", "/admin", "pseudo-headers"),
        ("x bad", "v", "header name may hold only"),
        ("", "v", "empty header name"),
        ("x-split", "a\r\nx-injected: 1", "CR, LF or NUL"),
    ],
)
def test_a_header_h2_would_refuse_fails_the_stream_with_the_fix(
    name: str, value: str, why: str
) -> None:
    with pytest.raises(TransportError) as caught:
        checked_headers([(name, value)], URL)
    message = str(caught.value)
    assert why in message and "additional_headers" in message and URL in message
    assert caught.value.url == URL


def test_each_pair_is_checked_once_and_the_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "_checked", set())
    monkeypatch.setattr(transport, "_CHECKED_LIMIT", 3)
    calls: list[str] = []
    real = transport._header_problem

    def counting(name: str, value: str) -> str | None:
        calls.append(name)
        return real(name, value)

    monkeypatch.setattr(transport, "_header_problem", counting)
    for _ in range(3):
        checked_headers([("x-a", "1"), ("x-b", "2")], URL)
    assert calls == ["x-a", "x-b"]
    for i in range(10):
        checked_headers([("authorization", f"token-{i}")], URL)
    assert len(transport._checked) <= 3
