"""Perdure's codec against the official Python SDK (restate-sdk), byte for byte, over h2c.

The test plays the server's part by hand: it writes frames with perdure.protocol, sends them
to a real service written with `restate`, and reads the SDK's answer with our decoder.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.h2client import H2Client, H2Stream
from tests.helpers.processes import ServiceProcess

from perdure.protocol import (
    Frame,
    FrameDecoder,
    MessageType,
    ServiceProtocolVersion,
    answers_proposal_with_ack,
    awaited_future,
    content_type_for,
    encode_message,
    encode_messages,
    negotiate_server,
    pb,
)

pytestmark = pytest.mark.interop

T = MessageType
V = ServiceProtocolVersion
TIMEOUT = 15.0
MANIFEST_V3 = "application/vnd.restate.endpointmanifest.v3+json"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = Path(tmp_path_factory.mktemp("greeter")) / "greeter.log"
    svc = ServiceProcess("tests.interop.services.greeter_app", log).start()
    try:
        yield svc
    finally:
        stop_service(svc)


def stop_service(svc: ServiceProcess) -> None:
    """SIGINT, then SIGKILL if it lingers (see greeter_app on why not SIGTERM)."""
    proc = svc.proc
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[H2Client]:
    async with await H2Client.connect("127.0.0.1", service.port) as c:
        yield c


async def fetch_manifest(client: H2Client) -> tuple[str, dict[str, Any]]:
    stream = await client.request("GET", "/discover", {"accept": MANIFEST_V3}, end_stream=True)
    status, headers = await asyncio.wait_for(stream.response_headers(), TIMEOUT)
    body = await asyncio.wait_for(stream.read_all(), TIMEOUT)
    assert status == 200, body
    return headers["content-type"], json.loads(body)


class Session:
    """One invocation stream, with Perdure's codec on our side of it."""

    def __init__(self, stream: H2Stream, version: int) -> None:
        self.stream = stream
        self.version = version
        self.decoder = FrameDecoder()
        self.pending: list[Frame] = []

    @classmethod
    async def open(
        cls, client: H2Client, handler: str, version: int, name: str, *, end_input: bool = False
    ) -> Session:
        ctype = content_type_for(version)
        stream = await client.request(
            "POST", f"/invoke/Greeter/{handler}", {"content-type": ctype, "accept": ctype}
        )
        start = pb.StartMessage(
            id=bytes(range(16)),
            debug_id="inv_1perdureWireTest",
            known_entries=1,
            partial_state=True,
        )
        if version >= 6:
            start.random_seed = 42
        payload = pb.Value(content=json.dumps(name).encode())
        await stream.send(
            encode_messages(start, pb.InputCommandMessage(value=payload)), end_stream=end_input
        )
        status, headers = await asyncio.wait_for(stream.response_headers(), TIMEOUT)
        assert status == 200, f"the SDK answered {status}"
        assert headers["content-type"] == ctype
        return cls(stream, version)

    async def next_frame(self) -> Frame:
        while not self.pending:
            chunk = await asyncio.wait_for(self.stream.receive(), TIMEOUT)
            assert chunk is not None, "the SDK ended the stream early"
            self.pending += self.decoder.feed(chunk)
        return self.pending.pop(0)

    async def frames_until(self, *last: MessageType) -> list[Frame]:
        """Frames up to and including the first of type `last`, skipping AwaitingOn hints."""
        frames: list[Frame] = []
        while True:
            frame = await self.next_frame()
            if frame.message_type == T.AWAITING_ON:
                assert self.version >= 7, "AwaitingOn only exists since V7"
                continue
            frames.append(frame)
            if frame.message_type in last:
                return frames

    async def finish(self) -> None:
        """Ends our half; the SDK then closes its half with nothing more to say."""
        await self.stream.end()
        rest = await asyncio.wait_for(self.stream.read_all(), TIMEOUT)
        assert self.pending + self.decoder.feed(rest) == []
        self.decoder.eof()


def output_value(frame: Frame) -> Any:
    output = frame.decode_as(pb.OutputCommandMessage)
    assert output.WhichOneof("result") == "value"
    return json.loads(output.value.content)


# --- discovery --------------------------------------------------------------------------------


async def test_discovery_lists_the_greeter_and_the_versions_it_speaks(client: H2Client) -> None:
    ctype, manifest = await fetch_manifest(client)
    assert ctype == MANIFEST_V3
    assert manifest["protocolMode"] == "BIDI_STREAM"  # asked over HTTP/2
    (greeter,) = [s for s in manifest["services"] if s["name"] == "Greeter"]
    assert {h["name"] for h in greeter["handlers"]} == {"greet", "greet_with_run"}
    assert (manifest["minProtocolVersion"], manifest["maxProtocolVersion"]) == (5, 7)
    assert negotiate_server(manifest["minProtocolVersion"], manifest["maxProtocolVersion"]) == V.V7


# --- a handler that only returns ----------------------------------------------------------------


@pytest.mark.parametrize("version", [V.V7, V.V6, V.V5], ids=lambda v: v.name)
async def test_greet_answers_with_output_then_end(client: H2Client, version: V) -> None:
    session = await Session.open(client, "greet", version, "Ada")
    output, end = await session.frames_until(T.END)
    assert output.message_type == T.OUTPUT_COMMAND
    assert output_value(output) == "Hello Ada!"
    assert end == Frame(T.END, b"")
    await session.finish()


# --- ctx.run: proposal and answer --------------------------------------------------------------


async def run_until_proposal(session: Session, name: str) -> pb.ProposeRunCompletionMessage:
    run, proposal = await session.frames_until(T.PROPOSE_RUN_COMPLETION)
    command = run.decode_as(pb.RunCommandMessage)
    assert command.name == "shout"
    message = proposal.decode_as(pb.ProposeRunCompletionMessage)
    assert message.result_completion_id == command.result_completion_id
    assert json.loads(message.value) == name.upper()
    # The official SDK asks for the small ack exactly when the version has it.
    assert proposal.requested_ack is (session.version >= 7)
    return message


@pytest.mark.parametrize("version", [V.V7, V.V6, V.V5], ids=lambda v: v.name)
async def test_run_proposal_answered_as_the_version_says(client: H2Client, version: V) -> None:
    session = await Session.open(client, "greet_with_run", version, "Ada")
    proposal = await run_until_proposal(session, "Ada")
    cid = proposal.result_completion_id
    if answers_proposal_with_ack(version, requested_ack=version >= 7):
        answer = encode_message(pb.ProposeRunCompletionAckMessage(completion_id=cid))
    else:
        answer = encode_message(
            pb.RunCompletionNotificationMessage(
                completion_id=cid, value=pb.Value(content=proposal.value)
            )
        )
    await session.stream.send(answer)
    output, _end = await session.frames_until(T.END)
    assert output_value(output) == "Hello ADA!"
    await session.finish()


async def test_v7_also_takes_the_full_notification_for_a_proposal(client: H2Client) -> None:
    session = await Session.open(client, "greet_with_run", V.V7, "Bo")
    proposal = await run_until_proposal(session, "Bo")
    notification = pb.RunCompletionNotificationMessage(
        completion_id=proposal.result_completion_id, value=pb.Value(content=proposal.value)
    )
    await session.stream.send(encode_message(notification))
    output, _end = await session.frames_until(T.END)
    assert output_value(output) == "Hello BO!"
    await session.finish()


async def test_an_ack_before_v7_is_a_protocol_violation(client: H2Client) -> None:
    # What Perdure's server must never do: the V6 SDK kept no copy of the result to ack.
    session = await Session.open(client, "greet_with_run", V.V6, "Cy")
    proposal = await run_until_proposal(session, "Cy")
    ack = pb.ProposeRunCompletionAckMessage(completion_id=proposal.result_completion_id)
    await session.stream.send(encode_message(ack))
    (error,) = await session.frames_until(T.ERROR)
    assert error.decode_as(pb.ErrorMessage).code == 571
    await session.finish()


# --- suspension: one message, two shapes ---------------------------------------------------------


@pytest.mark.parametrize("version", [V.V7, V.V6, V.V5], ids=lambda v: v.name)
async def test_suspension_shape_follows_the_version(client: H2Client, version: V) -> None:
    # Input closed right after the journal (request/response style): the SDK cannot get the
    # run's result on this stream, so it suspends on it.
    session = await Session.open(client, "greet_with_run", version, "Di", end_input=True)
    proposal = await run_until_proposal(session, "Di")
    (suspension,) = await session.frames_until(T.SUSPENSION)
    message = suspension.decode_as(pb.SuspensionMessage)
    if version >= 7:
        assert message.HasField("awaiting_on")
        assert list(message.waiting_completions) == []
    else:
        assert not message.HasField("awaiting_on")
        assert proposal.result_completion_id in message.waiting_completions
    tree = awaited_future(message)
    assert proposal.result_completion_id in tree.waiting_completions
    rest = await asyncio.wait_for(session.stream.read_all(), TIMEOUT)
    assert session.decoder.feed(rest) == []
    session.decoder.eof()


async def test_a_version_the_sdk_does_not_speak_is_refused(client: H2Client) -> None:
    stream = await client.request(
        "POST",
        "/invoke/Greeter/greet",
        {"content-type": "application/vnd.restate.invocation.v4"},
        end_stream=True,
    )
    status, _ = await asyncio.wait_for(stream.response_headers(), TIMEOUT)
    # The protocol asks for 415; restate-sdk 1.2.0 raises inside its ASGI app, and the
    # server (hypercorn) turns that into a bare 500.
    assert status in (415, 500)
    await asyncio.wait_for(stream.read_all(), TIMEOUT)
