"""sdk-test-suite State, on `perdure server` with official-SDK services.

Adds answer the old and new value, one-way sends through a proxy land, listing and clearing
all state touches one key only, and concurrent adds on one key are applied one at a time.
"""

from __future__ import annotations

import concurrent.futures

import pytest
from tests.helpers.processes import wait_until
from tests.integration.core.conftest import Core, idempotent, new_key

pytestmark = pytest.mark.interop


def test_add_answers_old_and_new_value(each: Core) -> None:
    key = new_key()
    assert each.call(f"Counter/{key}/add", 1) == {"oldValue": 0, "newValue": 1}
    assert each.call(f"Counter/{key}/add", 2) == {"oldValue": 1, "newValue": 3}


def test_one_way_adds_through_a_proxy_all_land(each: Core) -> None:
    key = new_key()
    request = {"serviceName": "Counter", "virtualObjectKey": key, "handlerName": "add"}
    for _ in range(3):
        invocation_id = each.call("Proxy/oneWayCall", {**request, "message": 1})
        assert invocation_id.startswith("inv_")
    wait_until(lambda: each.call(f"Counter/{key}/get") == 3, timeout=20, what="three one-way adds")


def test_clear_all_answers_and_removes_only_its_own_keys(each: Core) -> None:
    name = new_key()
    each.call(f"MapObject/{name}/set", {"key": "my-key-0", "value": "my-value-0"})
    each.call(f"MapObject/{name}/set", {"key": "my-key-1", "value": "my-value-1"})
    each.call(f"MapObject/{name}1/set", {"key": "my-key-2", "value": "my-value-2"})

    cleared = each.call(f"MapObject/{name}/clearAll")
    assert sorted(e["key"] for e in cleared) == ["my-key-0", "my-key-1"]
    assert sorted(e["value"] for e in cleared) == ["my-value-0", "my-value-1"]

    assert each.call(f"MapObject/{name}/get", "my-key-0") == ""
    assert each.call(f"MapObject/{name}/get", "my-key-1") == ""
    assert each.call(f"MapObject/{name}1/get", "my-key-2") == "my-value-2"


def test_concurrent_adds_on_one_key_are_applied_one_at_a_time(core: Core) -> None:
    key = new_key()
    adds = 24
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: core.call(f"Counter/{key}/add", 1), range(adds)))
    # Each add saw the value the previous one left: every old value 0..adds-1 exactly once.
    assert sorted(r["oldValue"] for r in results) == list(range(adds))
    assert all(r["newValue"] == r["oldValue"] + 1 for r in results)
    assert core.call(f"Counter/{key}/get") == adds


def test_idempotent_add_runs_once_for_the_same_key(core: Core) -> None:
    key = new_key()
    headers = idempotent()
    first = core.post(f"Counter/{key}/add", 5, headers=headers)
    again = core.post(f"Counter/{key}/add", 5, headers=headers)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json() == again.json() == {"oldValue": 0, "newValue": 5}
    assert core.call(f"Counter/{key}/get") == 5
