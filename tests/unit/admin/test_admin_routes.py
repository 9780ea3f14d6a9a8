"""Admin routing is pure: paths, versions, methods, query parameters and their refusals."""

from __future__ import annotations

import pytest

from perdure.server.admin.routes import (
    AdminRequest,
    DeleteDeployment,
    GetDeployment,
    GetHandler,
    GetInvocation,
    GetService,
    Health,
    ListDeployments,
    ListHandlers,
    ListInvocations,
    ListServices,
    OperateInvocation,
    RegisterDeployment,
    Version,
    parse_request,
)
from perdure.server.errors import PerdureError
from perdure.server.partition.events import Operation
from perdure.server.storage.api import InvocationStatus

INV = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"
DP = "dp_11nGQpCRmau6ypL82KH2TnP"


def route(method: str, path: str, query: list[tuple[str, str]] | None = None) -> object:
    result = parse_request(method, path, query or [])
    return result.route if isinstance(result, AdminRequest) else result


def refused(method: str, path: str, query: list[tuple[str, str]] | None = None) -> PerdureError:
    result = parse_request(method, path, query or [])
    assert isinstance(result, PerdureError), result
    return result


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/health", Health()),
        ("GET", "/version", Version()),
        ("GET", "/deployments", ListDeployments()),
        ("POST", "/deployments", RegisterDeployment()),
        ("GET", f"/deployments/{DP}", GetDeployment(DP)),
        ("DELETE", f"/deployments/{DP}", DeleteDeployment(DP, False)),
        ("GET", "/services", ListServices()),
        ("GET", "/services/Greeter", GetService("Greeter")),
        ("GET", "/services/Greeter/handlers", ListHandlers("Greeter")),
        ("GET", "/services/Greeter/handlers/greet", GetHandler("Greeter", "greet")),
        ("GET", f"/invocations/{INV}", GetInvocation(INV)),
        ("PATCH", f"/invocations/{INV}/cancel", OperateInvocation(INV, Operation.CANCEL)),
        ("PATCH", f"/invocations/{INV}/kill", OperateInvocation(INV, Operation.KILL)),
        ("PATCH", f"/invocations/{INV}/purge", OperateInvocation(INV, Operation.PURGE)),
        (
            "PATCH",
            f"/invocations/{INV}/purge-journal",
            OperateInvocation(INV, Operation.PURGE_JOURNAL),
        ),
        ("PATCH", f"/invocations/{INV}/pause", OperateInvocation(INV, Operation.PAUSE)),
        ("PATCH", f"/invocations/{INV}/resume", OperateInvocation(INV, Operation.RESUME)),
        (
            "PATCH",
            f"/invocations/{INV}/restart-as-new",
            OperateInvocation(INV, Operation.RESTART_AS_NEW),
        ),
        ("DELETE", f"/invocations/{INV}", OperateInvocation(INV, Operation.CANCEL, True)),
    ],
)
def test_every_route(method: str, path: str, expected: object) -> None:
    assert route(method, path) == expected
    for version in (2, 3, 4):
        versioned = parse_request(method, f"/v{version}{path}", [])
        assert isinstance(versioned, AdminRequest)
        assert versioned.route == expected and versioned.api_version == version


def test_unversioned_paths_have_version_zero() -> None:
    result = parse_request("GET", "/services", [])
    assert isinstance(result, AdminRequest) and result.api_version == 0


def test_unsupported_versions_are_refused() -> None:
    e = refused("GET", "/v1/services")
    assert e.status == 400 and "versions 2 to 4" in e.message
    assert refused("GET", "/v5/health").status == 400


def test_delete_modes_and_force() -> None:
    assert route("DELETE", f"/invocations/{INV}", [("mode", "kill")]) == OperateInvocation(
        INV, Operation.KILL, True
    )
    assert route("DELETE", f"/invocations/{INV}", [("mode", "Purge")]) == OperateInvocation(
        INV, Operation.PURGE, True
    )
    assert refused("DELETE", f"/invocations/{INV}", [("mode", "pause")]).status == 400
    assert route("DELETE", f"/deployments/{DP}", [("force", "true")]) == DeleteDeployment(DP, True)
    assert refused("DELETE", f"/deployments/{DP}", [("force", "yes please")]).status == 400


def test_invocation_list_filters() -> None:
    r = route(
        "GET",
        "/invocations",
        [("status", "running,backing_off"), ("service", "Greeter"), ("limit", "5")],
    )
    assert isinstance(r, ListInvocations)
    assert r.filter.statuses == frozenset({InvocationStatus.RUNNING, InvocationStatus.BACKING_OFF})
    assert r.filter.service == "Greeter" and r.filter.limit == 5
    active = route("GET", "/invocations", [("status", "active")])
    assert isinstance(active, ListInvocations) and active.filter.statuses is not None
    assert InvocationStatus.COMPLETED not in active.filter.statuses
    default = route("GET", "/invocations")
    assert isinstance(default, ListInvocations) and default.filter.limit == 100
    assert (
        "Unknown status 'done'; use one of active"
        in refused("GET", "/invocations", [("status", "done")]).full_message
    )
    assert refused("GET", "/invocations", [("limit", "0")]).status == 400
    assert refused("GET", "/invocations", [("limit", "5000")]).status == 400


def test_bad_ids_are_400_naming_the_field() -> None:
    e = refused("PATCH", "/invocations/nope/cancel")
    assert e.status == 400 and "'invocation_id'" in e.message
    assert "'deployment'" in refused("GET", "/deployments/dp_x").message


def test_wrong_methods_and_unknown_paths() -> None:
    assert refused("POST", "/health").status == 405
    assert refused("GET", f"/invocations/{INV}/cancel").status == 405
    assert refused("PUT", "/services").status == 405
    assert refused("GET", "/nope").status == 404
    assert refused("GET", "/services/Greeter/other").status == 404
    assert refused("PATCH", f"/invocations/{INV}/explode").status == 404


def test_not_yet_implemented_operations_say_so() -> None:
    assert refused("PATCH", f"/deployments/{DP}").status == 501
    assert refused("PATCH", "/services/Greeter").status == 501
    e = refused("PATCH", f"/invocations/{INV}/resume", [("deployment", DP)])
    assert e.status == 501
    chosen = refused("PATCH", f"/invocations/{INV}/restart-as-new", [("deployment", DP)])
    assert chosen.status == 501
    assert refused("PATCH", f"/invocations/{INV}/restart-as-new", [("from", "x")]).status == 400
    assert route(
        "PATCH", f"/invocations/{INV}/restart-as-new", [("from", "3"), ("deployment", "keep")]
    ) == OperateInvocation(INV, Operation.RESTART_AS_NEW, from_index=3, keep_deployment=True)
    assert route(
        "PATCH", f"/invocations/{INV}/resume", [("deployment", "keep")]
    ) == OperateInvocation(INV, Operation.RESUME)
