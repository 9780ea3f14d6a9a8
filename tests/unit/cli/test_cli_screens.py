"""What the operator reads: tables, describe screens, receipts, errors; and the HTTP edges."""

from __future__ import annotations

import pytest
from tests.helpers.processes import free_port

from perdure.cli import render
from perdure.cli.api import Api, Endpoints, admin_error
from perdure.cli.deployments import deployment_text, deployments_table, registered_text
from perdure.cli.diagnosis import Diagnosis
from perdure.cli.explain import diagnosis_text, is_invocation_id
from perdure.cli.invocations import invocation_text, invocations_table, operation_text
from perdure.cli.invoke import failure_error, output_text, receipt_text
from perdure.cli.main import main
from perdure.cli.render import EXIT_UNREACHABLE, CliError
from perdure.cli.services import service_text, services_table
from perdure.client.requests import HttpResponse

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def squash(text: str) -> str:
    """Columns and aligned fields with single spaces, so tests do not pin the padding."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def test_table_aligns_columns_and_cuts_long_cells() -> None:
    out = render.table(["A", "B"], [["x", "y" * 100], [None, "z"]])
    lines = out.splitlines()
    assert lines[0] == "A  B"
    assert lines[1].startswith("x  yyy") and lines[1].endswith("…")
    assert len(lines[1]) == 3 + render.MAX_CELL
    assert lines[2] == "-  z"


def test_durations_and_relative_times_read_naturally() -> None:
    assert render.duration(3_725_000) == "1h 2m"
    assert render.duration(61_500) == "1m 1s"
    assert render.relative(NOW + 90_000, NOW) == "in 1m 30s"
    assert render.relative(NOW - 5_000, NOW) == "5s ago"
    assert render.when("2023-11-14T22:14:00.000Z", NOW) == "22:14:00 UTC (in 40s)"
    assert render.when("2023-11-13T22:14:00.000Z", NOW).startswith("2023-11-13 22:14:00 UTC")
    assert render.when(None, NOW) == "-"
    assert render.parse_timestamp("not a time") is None


def test_invocations_table_shows_the_column_that_matters_per_status() -> None:
    document = {
        "invocations": [
            {
                "id": "inv_b",
                "target": "Flaky/k/run",
                "status": "backing-off",
                "attempts": 3,
                "modified_at": "2023-11-14T22:13:19.000Z",
                "next_retry_at": "2023-11-14T22:13:25.000Z",
                "last_failure": {"code": 500, "message": "boom"},
            },
            {
                "id": "inv_c",
                "target": "Greeter/greet",
                "status": "completed",
                "attempts": 1,
                "outcome": {"status": "failure", "code": 418, "message": "teapot"},
            },
        ]
    }
    out = invocations_table(document, NOW)
    assert out.splitlines()[0].split() == ["ID", "TARGET", "STATUS", "ATTEMPTS", "MODIFIED", "INFO"]
    assert "retry in 5s: [500] boom" in out
    assert "failed [418] teapot" in out
    assert invocations_table({"invocations": []}, NOW) == "No invocations match."


def test_describe_shows_failure_waiting_lock_and_journal() -> None:
    inv = {
        "id": "inv_x",
        "target": "Counter/k/add",
        "status": "suspended",
        "attempts": 2,
        "retry_count": 1,
        "last_failure": {"code": 500, "message": "boom", "related_command": "command 1 step"},
        "key_lock": {"holder": "inv_x", "queued": 2},
        "waiting_for": {"t": 1, "l": ["c:1"]},
        "journal": [
            {"index": 0, "type": "input_command"},
            {
                "index": 1,
                "type": "sleep_command",
                "completion_id": 1,
                "wake_up_at": "2023-11-14T22:14:20.000Z",
            },
        ],
    }
    out = squash(invocation_text(inv, NOW))
    assert "last failure: [500] boom" in out
    assert "related command: command 1 step" in out
    assert "waiting for: a timer due at 22:14:20 UTC (in 1m)" in out
    assert "key lock: held by inv_x, 2 queued" in out
    assert "Journal (2 entries):" in out
    assert "1 sleep wakes 22:14:20 UTC (in 1m), result as c:1" in out


def test_deployment_and_service_screens() -> None:
    service = {
        "name": "Counter",
        "ty": "VirtualObject",
        "revision": 1,
        "deployment_id": "dp_1",
        "handlers": [
            {"name": "add", "ty": "Exclusive", "input_description": "JSON number"},
            {"name": "get", "ty": "Shared"},
        ],
        "retry_policy": {
            "initial_interval": "500ms",
            "exponentiation_factor": 2.0,
            "max_interval": "1m",
            "max_attempts": 70,
            "on_max_attempts": "Pause",
        },
    }
    deployment = {
        "id": "dp_1",
        "uri": "http://127.0.0.1:9080",
        "protocol_type": "BidiStream",
        "http_version": "HTTP/2.0",
        "min_protocol_version": 5,
        "max_protocol_version": 7,
        "created_at": "2023-11-14T22:13:00.000Z",
        "services": [service],
    }
    assert "Counter  VirtualObject  1         add, get" in deployment_text(deployment, NOW)
    listing = deployments_table({"deployments": [deployment]}, NOW)
    assert "dp_1  http://127.0.0.1:9080  HTTP/2.0  Counter   20s ago" in listing
    assert "perdure deployments register" in deployments_table({"deployments": []}, NOW)
    assert "Counter  VirtualObject  1         dp_1" in services_table({"services": [service]})
    described = squash(service_text(service))
    assert "retry policy: 500ms x2.0 up to 1m, 70 attempts, then pause" in described
    assert "add Exclusive JSON number" in described
    created = registered_text(201, {"id": "dp_1", "services": [service]}, "http://h:1")
    assert created.startswith("Deployment dp_1 at http://h:1: registered.")
    dry = registered_text(200, {"id": "dp_1", "services": [], "dry_run": True}, "http://h:1")
    assert "would register" in dry


def test_invoke_prints_outputs_receipts_and_handler_failures() -> None:
    json_out = HttpResponse(200, {"content-type": "application/json"}, b'{"a":1}')
    assert output_text(json_out) == '{\n  "a": 1\n}'
    assert output_text(HttpResponse(200, {}, b"")) == "(no output)"
    assert output_text(HttpResponse(200, {"content-type": "x"}, b"\xff\xfe")).startswith("(2 bytes")
    receipt = receipt_text({"invocationId": "inv_1", "status": "Accepted"}, NOW)
    assert receipt.splitlines() == [
        "Accepted: inv_1",
        "follow it: perdure invocations describe inv_1",
    ]
    later = {"invocationId": "inv_2", "status": "Accepted", "executionTime": "2023-11-14T23:13:20Z"}
    assert "starts at 23:13:20 UTC (in 1h)" in receipt_text(later, NOW)
    failed = failure_error(
        HttpResponse(
            418,
            {"x-restate-error-source": "invocation"},
            b'{"code": 418, "message": "teapot"}',
        )
    )
    assert failed.message == "the handler failed [418]: teapot"


def test_admin_errors_keep_the_servers_message_and_hint_once() -> None:
    body = b'{"message": "No invocation inv_1. It may have been purged.", "hint": "It may have been purged."}'  # noqa: E501
    error = admin_error(404, body, "GET /invocations/inv_1")
    assert (error.message, error.hint, error.status) == (
        "No invocation inv_1.",
        "It may have been purged.",
        404,
    )
    raw = admin_error(502, b"Bad Gateway", "GET /services")
    assert raw.message == "GET /services answered 502: Bad Gateway"


def test_explain_screen_and_subjects() -> None:
    d = Diagnosis(
        "paused", "It is paused.", ("Last error: boom",), ("perdure invocations resume x",)
    )
    assert diagnosis_text("inv_1", d).splitlines() == [
        "inv_1: paused",
        "It is paused.",
        "  - Last error: boom",
        "",
        "Next:",
        "  perdure invocations resume x",
    ]
    assert is_invocation_id("inv_1abc") and not is_invocation_id("Counter/k1")
    assert operation_text("cancel", "inv_1").startswith("Cancellation requested for inv_1")
    assert operation_text("pause", "inv_1", 200) == "inv_1 was already paused."
    restarted = operation_text("restart", "inv_1", 200, {"new_invocation_id": "inv_2"})
    assert restarted.splitlines() == [
        "Restarted inv_1 as inv_2.",
        "follow it: perdure explain inv_2",
    ]


def test_no_server_at_the_url_names_it_and_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    code = main(["--admin-url", f"127.0.0.1:{port}", "invocations", "list"])
    err = capsys.readouterr().err
    assert code == EXIT_UNREACHABLE
    assert f"cannot reach the Perdure admin API at http://127.0.0.1:{port}" in err
    assert "perdure server" in err
    with (
        pytest.raises(CliError) as caught,
        Api(Endpoints("http://x", f"http://127.0.0.1:{port}")) as api,
    ):
        from perdure.client.requests import HttpRequest

        api.ingress(HttpRequest("POST", "/Greeter/greet"))
    assert "ingress" in caught.value.message and "--ingress-url" in caught.value.hint
