"""Parsing what the operator types: targets, delays, inputs, headers, URLs, global options."""

from __future__ import annotations

import datetime
import doctest

import pytest

from perdure.cli import api, deployments, diagnosis, explain, invocations, invoke, render
from perdure.cli.api import Endpoints, normalize_url
from perdure.cli.deployments import parse_headers, registration_body
from perdure.cli.invocations import list_params
from perdure.cli.invoke import InvokeTarget, parse_delay, parse_input, parse_target
from perdure.cli.main import build_parser, main
from perdure.cli.render import EXIT_USAGE, CliError


@pytest.mark.parametrize(
    "module", [api, deployments, diagnosis, explain, invocations, invoke, render]
)
def test_docstring_examples_hold(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Greeter/greet", InvokeTarget("Greeter", "greet")),
        ("Counter/clicks/add", InvokeTarget("Counter", "add", "clicks")),
        ("Counter/user/42/add", InvokeTarget("Counter", "add", "user/42")),
        ("/Greeter/greet/", InvokeTarget("Greeter", "greet")),
    ],
)
def test_invoke_target_reads_service_key_and_handler(text: str, expected: InvokeTarget) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["Greeter", "", "/greet", "Greeter/"])
def test_invoke_target_without_handler_is_a_usage_error(text: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_target(text)
    assert caught.value.exit_code == EXIT_USAGE
    assert "SERVICE/HANDLER" in caught.value.hint


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172_800),
        ("1.5s", 1.5),
        ("PT10S", 10),
        ("PT1M30S", 90),
        ("P1DT1H", 90_000),
        ("pt2.5s", 2.5),
    ],
)
def test_delays_read_compact_and_iso_durations(text: str, seconds: float) -> None:
    assert parse_delay(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "ten seconds", "5x", "10s5", "P", "PT"])
def test_a_delay_that_is_not_a_duration_is_a_usage_error(text: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_delay(text)
    assert caught.value.exit_code == EXIT_USAGE


def test_input_is_validated_json_and_reencoded_compactly() -> None:
    assert parse_input('"Ada"') == b'"Ada"'
    assert parse_input('{ "n" : 3 }') == b'{"n":3}'
    assert parse_input(None) == b""
    with pytest.raises(CliError) as caught:
        parse_input("Ada")
    assert "Quote strings" in caught.value.hint


def test_headers_are_name_colon_value() -> None:
    assert parse_headers(["Authorization: Bearer a:b", "x-one:1"]) == {
        "Authorization": "Bearer a:b",
        "x-one": "1",
    }
    with pytest.raises(CliError):
        parse_headers(["no-colon"])


def test_registration_body_follows_restates_request() -> None:
    assert registration_body(
        "http://h:1", force=True, use_http_11=False, headers={}, dry_run=False
    ) == {"uri": "http://h:1", "force": True, "use_http_11": False}
    body = registration_body(
        "http://h:1", force=False, use_http_11=True, headers={"a": "b"}, dry_run=True
    )
    assert body["additional_headers"] == {"a": "b"}
    assert body["dry_run"] is True and body["use_http_11"] is True


def test_list_params_pass_filters_and_check_the_limit() -> None:
    assert list_params(None, None, None, 50) == [("limit", "50")]
    assert list_params("active", "Counter", "", 5) == [
        ("limit", "5"),
        ("status", "active"),
        ("service", "Counter"),
        ("key", ""),
    ]
    for bad in (0, 1001):
        with pytest.raises(CliError):
            list_params(None, None, None, bad)


def test_urls_come_from_flag_then_environment_then_default() -> None:
    env = {"PERDURE_ADMIN_URL": "10.0.0.1:9070", "PERDURE_INGRESS_URL": "https://in.example/"}
    assert Endpoints.resolve(None, None, {}) == Endpoints(
        "http://127.0.0.1:9070", "http://127.0.0.1:8080"
    )
    assert Endpoints.resolve(None, None, env) == Endpoints(
        "http://10.0.0.1:9070", "https://in.example"
    )
    assert Endpoints.resolve("a:1", "b:2", env) == Endpoints("http://a:1", "http://b:2")
    assert normalize_url(" localhost:9070/ ") == "http://localhost:9070"


def test_connection_options_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--admin-url", "a:1", "--json", "invocations", "list"])
    after = parser.parse_args(["invocations", "list", "--admin-url", "a:1", "--json"])
    plain = parser.parse_args(["invocations", "list"])
    for args in (before, after):
        assert args.admin_url == "a:1" and args.json is True
    assert plain.admin_url is None and plain.json is False


def test_every_read_command_accepts_json() -> None:
    parser = build_parser()
    for argv in (
        ["deployments", "list"],
        ["deployments", "describe", "dp_1"],
        ["services", "list"],
        ["services", "describe", "Greeter"],
        ["invocations", "list"],
        ["invocations", "describe", "inv_1"],
        ["explain", "inv_1"],
        ["invoke", "Greeter/greet", "--send"],
    ):
        assert parser.parse_args([*argv, "--json"]).json is True


def test_a_group_without_subcommand_prints_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["invocations"]) == EXIT_USAGE
    assert "cancel" in capsys.readouterr().out


def test_delay_without_send_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--ingress-url", "127.0.0.1:9", "invoke", "Greeter/greet", "--delay", "1s"])
    assert code == EXIT_USAGE
    assert "--delay only works with --send" in capsys.readouterr().err


def test_remove_without_force_says_how_to_force(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--admin-url", "127.0.0.1:9", "deployments", "remove", "dp_1x"]) == EXIT_USAGE
    assert "remove dp_1x --force" in capsys.readouterr().err
