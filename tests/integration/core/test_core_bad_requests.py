"""Requests the ingress must refuse: Restate's status codes, a message naming the fix, and
nothing stored (checked through the admin API's GET /invocations).

Restate answers 404 for an unknown service or handler, 400 for a path that does not fit the
service's kind (a key given to a service, none given to a virtual object) and for a body that
does not fit the handler's input, and 405 for a method other than POST.
"""

from __future__ import annotations

import httpx
import pytest
from tests.integration.core.conftest import Core, new_key

pytestmark = pytest.mark.interop

JSON = {"content-type": "application/json"}


def send(
    core: Core, method: str, path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return httpx.request(
        method, f"{core.server.ingress}/{path}", content=body, headers=headers, timeout=30
    )


# (method, path, body, headers, status, words the message must contain)
REFUSED = [
    pytest.param(
        "POST",
        "Nope/greet",
        b'"x"',
        JSON,
        404,
        ["Nope", "Counter", "register"],
        id="unknown-service",
    ),
    pytest.param(
        "POST",
        "Counter/{key}/nope",
        b"1",
        JSON,
        404,
        ["nope", "add", "get"],
        id="unknown-handler-of-object",
    ),
    pytest.param(
        "POST",
        "TestUtilsService/nope",
        b"1",
        JSON,
        404,
        ["nope", "sleepConcurrently"],
        id="unknown-handler-of-service",
    ),
    pytest.param(
        "POST",
        "TestUtilsService/{key}/sleepConcurrently",
        b"[1]",
        JSON,
        400,
        ["takes no key", "POST /TestUtilsService/sleepConcurrently"],
        id="key-given-to-a-service",
    ),
    pytest.param(
        "POST",
        "Counter/add",
        b"1",
        JSON,
        400,
        ["key", "POST /Counter/{key}/add"],
        id="no-key-for-an-object",
    ),
    pytest.param(
        "POST",
        "Counter/{key}/add/extra",
        b"1",
        JSON,
        400,
        ["/Counter/{key}/{handler}"],
        id="path-too-long",
    ),
    pytest.param(
        "POST",
        "Counter/{key}/add",
        b"{not json",
        JSON,
        400,
        ["not JSON", "line 1"],
        id="malformed-json",
    ),
    pytest.param(
        "POST", "Counter/{key}/add", b"\xff\xfe\xfa", JSON, 400, ["not JSON"], id="not-utf8"
    ),
    pytest.param("POST", "Counter/{key}/add", b"", JSON, 400, ["empty"], id="empty-json"),
    pytest.param(
        "POST",
        "Counter/{key}/add",
        b"1",
        {"content-type": "text/plain"},
        400,
        ["text/plain", "application/json"],
        id="wrong-content-type",
    ),
    pytest.param(
        "POST", "Counter/{key}/add", b"1", {}, 400, ["no content-type"], id="missing-content-type"
    ),
    pytest.param(
        "POST",
        "Counter/{key}/get",
        b"1",
        JSON,
        400,
        ["takes no input"],
        id="body-for-a-handler-without-input",
    ),
    pytest.param(
        "POST", "Counter/{key}/add/send?delay=soon", b"1", JSON, 400, ["delay"], id="bad-delay"
    ),
    pytest.param("PUT", "Counter/{key}/add", b"1", JSON, 405, ["POST"], id="wrong-method"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "words"), REFUSED)
def test_bad_request_is_refused_clearly_and_stores_nothing(
    core: Core,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    words: list[str],
) -> None:
    key = new_key()
    before = {i["id"] for i in core.invocations()}
    r = send(core, method, path.replace("{key}", key), body, headers)
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["code"] == status
    for word in words:
        assert word in answer["message"], (word, answer["message"])
    after = core.invocations()
    assert {i["id"] for i in after} == before, "a refused request left an invocation behind"
    assert not [i for i in after if key in i["target"]]


def test_a_valid_request_after_refused_ones_is_stored_once(core: Core) -> None:
    key = new_key()
    assert send(core, "POST", f"Counter/{key}/add", b"{", JSON).status_code == 400
    assert core.call(f"Counter/{key}/add", 7) == {"oldValue": 0, "newValue": 7}
    mine = [i for i in core.invocations() if i["target_service_key"] == key]
    assert [(i["target_handler_name"], i["status"]) for i in mine] == [("add", "completed")]
