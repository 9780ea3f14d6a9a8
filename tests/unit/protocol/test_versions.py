"""Protocol versions: content types, negotiation, per-version features, and the 415 answer."""

from __future__ import annotations

import pytest

from perdure.protocol import (
    SDK_VERSIONS,
    SERVER_VERSIONS,
    ServiceProtocolVersion,
    UnsupportedVersion,
    answers_proposal_with_ack,
    content_type_for,
    negotiate,
    negotiate_server,
    parse_content_type,
    require_version,
    unsupported_version_message,
)
from perdure.protocol import versions as v

V = ServiceProtocolVersion


def test_content_types_name_the_version() -> None:
    assert content_type_for(5) == "application/vnd.restate.invocation.v5"
    assert V.V7.content_type == "application/vnd.restate.invocation.v7"
    with pytest.raises(ValueError, match="version 4 is not one Perdure speaks"):
        content_type_for(4)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/vnd.restate.invocation.v5", V.V5),
        ("application/vnd.restate.invocation.v7", V.V7),
        ("Application/VND.Restate.Invocation.V6", V.V6),
        ("application/vnd.restate.invocation.v6; charset=binary", V.V6),
        ("  application/vnd.restate.invocation.v7  ", V.V7),
        ("application/vnd.restate.invocation.v4", None),
        ("application/vnd.restate.invocation.v8", None),
        ("application/vnd.restate.invocation.v", None),
        ("application/vnd.restate.invocation.v77777777", None),
        ("application/vnd.restate.invocation.7", None),
        ("application/json", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_content_type(header: str | None, expected: V | None) -> None:
    assert parse_content_type(header) == expected


def test_both_sides_speak_v5_to_v7() -> None:
    assert {V.V5, V.V6, V.V7} <= SERVER_VERSIONS
    assert {V.V5, V.V6, V.V7} <= SDK_VERSIONS


@pytest.mark.parametrize(
    ("server", "sdk", "expected"),
    [
        ({5, 6, 7}, range(5, 8), V.V7),
        ({5, 6, 7}, range(1, 6), V.V5),
        ({5, 6}, {5, 6, 7, 8}, V.V6),
        ({5, 6, 7}, {8, 9}, None),
        ({5, 6, 7, 8}, {8}, None),  # 8 is not a version Perdure knows how to speak
        (set(), {5}, None),
    ],
)
def test_negotiate_picks_the_highest_common_version(
    server: set[int], sdk: range | set[int], expected: V | None
) -> None:
    assert negotiate(server, sdk) == expected


def test_negotiate_server_reads_a_deployment_range() -> None:
    assert negotiate_server(5, 7) == V.V7
    assert negotiate_server(5, 5) == V.V5
    assert negotiate_server(1, 6) == V.V6
    assert negotiate_server(5, 9) == V.V7
    assert negotiate_server(1, 4) is None
    assert negotiate_server(8, 9) is None


def test_features_by_version() -> None:
    table = {
        version: (
            v.has_random_seed(version),
            v.has_failure_metadata(version),
            v.uses_awaiting_on_suspension(version),
            v.has_awaiting_on_message(version),
            v.has_propose_run_ack(version),
            v.has_error_behavior(version),
            v.has_scope_and_limit_key(version),
            v.has_start_idempotency_key(version),
        )
        for version in (5, 6, 7)
    }
    assert table[5] == (False,) * 8
    assert table[6] == (True, True) + (False,) * 6
    assert table[7] == (True,) * 8


def test_run_proposals_are_acked_only_on_v7_when_asked() -> None:
    assert answers_proposal_with_ack(7, requested_ack=True)
    assert not answers_proposal_with_ack(7, requested_ack=False)
    assert not answers_proposal_with_ack(6, requested_ack=True)
    assert not answers_proposal_with_ack(5, requested_ack=True)


def test_the_415_message_says_what_to_do() -> None:
    newer = unsupported_version_message("application/vnd.restate.invocation.v9")
    assert "v9 is not supported here (speaks v5, v6, v7)" in newer
    assert "upgrade this deployment's SDK" in newer
    older = unsupported_version_message("application/vnd.restate.invocation.v2")
    assert "upgrade the server" in older
    missing = unsupported_version_message(None)
    assert "no content-type" in missing
    other = unsupported_version_message("application/json")
    assert "not a Restate invocation stream" in other
    narrow = unsupported_version_message("application/vnd.restate.invocation.v7", {5, 6})
    assert "(speaks v5, v6)" in narrow


def test_require_version_raises_a_415_error_with_the_message() -> None:
    assert require_version("application/vnd.restate.invocation.v7") is V.V7
    with pytest.raises(UnsupportedVersion, match="v7 is not supported here") as info:
        require_version("application/vnd.restate.invocation.v7", supported={5, 6})
    assert info.value.code == 415
    assert info.value.content_type == "application/vnd.restate.invocation.v7"
