"""Perdure SDK features beyond the examples, for the cross-engine tests (in process only).

Side effects are recorded in module-level lists, keyed by a tag the test passes in, so the
test can tell what ran how many times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import perdure

#: (tag, event) in the order they happened.
events: list[tuple[str, str]] = []
#: Awakeable ids handed out, by tag.
awakeables: dict[str, str] = {}

features = perdure.Service("Features")
keeper = perdure.VirtualObject("Keeper")
waiter = perdure.Service("Waiter")


def note(tag: str, event: str) -> None:
    events.append((tag, event))


def events_of(tag: str) -> list[str]:
    return [event for t, event in events if t == tag]


# --- retries -------------------------------------------------------------------------------


def flaky(tag: str, failures: int) -> str:
    tries = events_of(tag).count("try") + 1
    note(tag, "try")
    if tries <= failures:
        raise ConnectionError(f"try {tries} failed")
    return f"ok after {tries}"


@features.handler(name="runRetries")
async def run_retries(ctx: perdure.Context, tag: str) -> str:
    """A step that fails twice, then works; then a step that gives up after 2 tries."""
    first = await ctx.run("flaky", flaky, tag, 2)
    try:
        await ctx.run(
            "hopeless",
            flaky,
            f"{tag}-hopeless",
            99,
            options=perdure.RunOptions(max_attempts=2, initial_retry_interval=timedelta(0)),
        )
    except perdure.TerminalError as exc:
        return f"{first}; gave up: {exc.message}"
    return f"{first}; hopeless succeeded?"


@features.handler(name="retryableTwice")
async def retryable_twice(ctx: perdure.Context, tag: str) -> int:
    """The handler itself fails twice with RetryableError; the server retries the invocation."""
    attempt = len(events_of(tag)) + 1
    note(tag, f"attempt {attempt}")
    if attempt <= 2:
        raise perdure.RetryableError("not yet", retry_after=timedelta(milliseconds=20))
    return attempt


# --- state ----------------------------------------------------------------------------------


@keeper.handler()
async def keep(ctx: perdure.ObjectContext, names: list[str]) -> list[str]:
    for name in names:
        ctx.set(name, name.upper())
    ctx.clear(names[0])
    return sorted(await ctx.state_keys())


@keeper.handler()
async def forget(ctx: perdure.ObjectContext) -> list[str]:
    ctx.clear_all()
    return await ctx.state_keys()


# --- calls, attach, cancellation -------------------------------------------------------------


@waiter.handler()
async def wait(ctx: perdure.Context, tag: str) -> str:
    """Waits on an awakeable; records its own cancellation."""
    awakeable_id, answer = ctx.awakeable(type_hint=str)
    await ctx.run("hand out", awakeables.__setitem__, tag, awakeable_id)
    try:
        return await answer
    except perdure.InvocationCancelledError:
        await ctx.run("note cancel", note, tag, "waiter cancelled")
        raise


@features.handler(name="callAndWait")
async def call_and_wait(ctx: perdure.Context, tag: str) -> str:
    """Calls the waiter; cancelling this invocation cancels the call too."""
    try:
        return await ctx.service_call(wait, tag)
    except perdure.InvocationCancelledError:
        await ctx.run("note cancel", note, tag, "caller cancelled")
        raise


@features.handler(name="sendThenAttach")
async def send_then_attach(ctx: perdure.Context, tag: str) -> str:
    handle = ctx.service_send(wait, tag)
    target = await handle.invocation_id()
    await ctx.run("note id", note, tag, target)
    return await ctx.attach_invocation(target, type_hint=str)


@features.handler(name="rawCall")
async def raw_call(ctx: perdure.Context, name: str) -> bytes:
    greeting = await ctx.generic_call("Features", "echoBytes", name.encode())
    return greeting + b"!"


@features.handler(name="echoBytes")
async def echo_bytes(ctx: perdure.Context, data: bytes) -> bytes:
    return b"<" + data + b">"


# --- signals ---------------------------------------------------------------------------------


@features.handler(name="awaitSignal")
async def await_signal(ctx: perdure.Context, tag: str) -> str:
    await ctx.run("note id", note, tag, ctx.request().id)
    return await ctx.signal("go", type_hint=str)


@features.handler(name="sendSignal")
async def send_signal(ctx: perdure.Context, target: str) -> None:
    ctx.resolve_signal(target, "go", "signalled")


# --- determinism ------------------------------------------------------------------------------


@features.handler(name="sameDraws")
async def same_draws(ctx: perdure.Context, tag: str) -> list[str]:
    """Draws before a suspension; the attempt that finishes draws again, from the same seed."""
    draws = [str(ctx.uuid()), str(ctx.random().randint(0, 10**9))]
    await ctx.run("note draws", note, tag, " ".join(draws))
    await ctx.sleep(timedelta(milliseconds=20))  # REQUEST_RESPONSE: the rest is a new attempt
    await ctx.run("note attempt", note, tag, "after sleep")
    return draws


# --- replay of typed values ----------------------------------------------------------------


@dataclass
class Parcel:
    label: str
    weight: float


@features.handler(name="typedReplay")
async def typed_replay(ctx: perdure.Context, label: str) -> str:
    """A dataclass journaled by ctx.run is read back as a dataclass when the handler replays."""
    parcel = await ctx.run("weigh", lambda: Parcel(label, 1.5), type_hint=Parcel)
    await ctx.sleep(timedelta(milliseconds=50))
    again = await ctx.run("weigh again", lambda: Parcel(label, 2.0), type_hint=Parcel)
    assert isinstance(parcel, Parcel) and isinstance(again, Parcel)
    return f"{parcel.label}: {parcel.weight + again.weight}"


services = [features, keeper, waiter]
