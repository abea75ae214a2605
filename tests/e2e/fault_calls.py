"""Phone calls through faults of the model's service: the fake Twilio caller talks to the
real app, which talks to the mock Realtime server with fault injection."""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable
from typing import Any

from phone_stack import Stack

from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit

GREETING = "Hi, Foreman here."
ANSWER = "Sure, will do."
AGAIN = "As I was saying."

# Short replies and a short end of turn keep a call a few seconds long.
RECOVERY = {
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.5,
    "reconnect_window_s": 10.0,
    "response_timeout_s": 2.0,
    "stall_timeout_s": 1.5,
}
REALTIME: dict[str, Any] = {
    "turn_detection": {"silence_duration_ms": 300},
    "recovery": RECOVERY,
}


def scenario() -> Scenario:
    return Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say(GREETING)),
            Rule(Match(instructions="line dropped"), Reply.say(AGAIN)),
            Rule(Match.any(), Reply.say(ANSWER)),
        ]
    )


async def warm_speech(*texts: str) -> None:
    """Synthesize the mock's replies once before the call (the mock caches them): a busy
    machine can take seconds over espeak-ng, which a short stall timeout would take for a
    frozen model."""
    from foreman.audio.formats import Encoding
    from foreman.testing.mock_realtime.audio_io import speech

    for text in texts or (GREETING, ANSWER, AGAIN):
        await asyncio.to_thread(speech, text, Encoding.PCMU)


@functools.cache
def caller_speech() -> bytes:
    return synthesize("Check my calendar.", 8000)


async def bus_event(
    stack: Stack, kind: str, pred: Callable[[dict[str, Any]], bool] = lambda d: True
) -> dict[str, Any]:
    async with asyncio.timeout(unit(20)):
        while True:
            ev = await stack.events.get()
            if ev.kind == kind and pred(ev.data):
                return dict(ev.data)


async def until_quiet(caller: FakeTwilioCaller, quiet_s: float = 0.4) -> None:
    """Until nothing has played for `quiet_s` (the assistant finished talking)."""
    while not caller.closed:
        if caller.playing:
            await caller.wait_until(lambda: not caller.playing or caller.closed, unit(30))
            continue
        try:
            await caller.wait_until(news(caller, caller.media_received), quiet_s)
        except TimeoutError:
            return


async def until_idle(stack: Stack, caller: FakeTwilioCaller, session_id: str) -> None:
    """Until the assistant has nothing more to say and the caller heard all of it (polls
    the live session: no event announces both)."""
    session = stack.app.state.sessions.get(session_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + unit(30)
    while session is not None and session.active:
        await until_quiet(caller)
        if not (session.turns.busy or session.endpoint.playing or caller.playing):
            return
        if loop.time() > deadline:
            raise TimeoutError("the assistant did not go quiet")
        await asyncio.sleep(0.05)


def news(caller: FakeTwilioCaller, seen: int) -> Callable[[], bool]:
    return lambda: caller.media_received > seen or caller.closed


async def say_and_hear(caller: FakeTwilioCaller, *, within_s: float = 15.0) -> bytes:
    """The caller speaks once the assistant is quiet, then waits until 300 ms of the
    model's answer have played; returns those 300 ms."""
    await until_quiet(caller)
    before = len(caller.played)
    await caller.play_speech(caller_speech())
    await caller.wait_until(lambda: len(caller.played) >= before + 8 * 300, unit(within_s))
    return bytes(caller.played[before : before + 8 * 300])


def assistant_items(stack: Stack) -> list[tuple[str, bool, bool]]:
    """(text the model sent, whether the client cut it, whether a drop cut it) for every
    assistant item that had words, in the order of the mock's sessions: what the history
    must hold, once each."""
    out: list[tuple[str, bool, bool]] = []
    for s in stack.mock.sessions:
        cut = {e["item_id"] for e in s.received if e.get("type") == "conversation.item.truncate"}
        words: dict[str, str] = {}
        done: dict[str, str] = {}
        for e in s.sent:
            if e["type"] == "response.output_audio_transcript.delta":
                words[e["item_id"]] = words.get(e["item_id"], "") + e["delta"]
            elif e["type"] == "response.output_audio_transcript.done":
                done[e["item_id"]] = e["transcript"]
        for item_id, text in words.items():
            out.append((done.get(item_id, text), item_id in cut, item_id not in done))
    return out


def user_turns(stack: Stack) -> int:
    return sum(
        e["type"] == "conversation.item.input_audio_transcription.completed"
        for s in stack.mock.sessions
        for e in s.sent
    )


async def stored_turns(stack: Stack, session_id: str) -> list[dict[str, Any]]:
    from foreman.stores import SqliteConversationStore

    store = await SqliteConversationStore.open(stack.settings.storage.db_path)
    try:
        return [t.to_dict() for t in await store.session_turns(session_id)]
    finally:
        await store.aclose()


def assert_history_complete(stack: Stack, turns: list[dict[str, Any]]) -> None:
    """Every assistant utterance the model sent is stored once (cut ones as heard), every
    transcribed user turn once; replayed context never comes back as a new turn. The words
    of a reply a drop cut short are stored as far as they arrived: the last piece the mock
    sent as the connection went may not have reached the client (then none of the reply
    may have)."""
    said = [t["text"] for t in turns if t["kind"] == "speech"]
    expected = assistant_items(stack)
    left = list(said)
    for full, cut, dropped in expected:
        if left and (left[0] == full or ((cut or dropped) and full.startswith(left[0]))):
            left.pop(0)
        else:
            assert dropped, (said, expected)  # only a dropped reply's words may be missing
    assert not left, (said, expected)
    spoken = [t for t in turns if t["kind"] == "spoken"]
    # Likewise a transcription sent as a connection dropped may not have arrived.
    dropped = sum(s.dropped for s in stack.mock.sessions)
    assert user_turns(stack) - dropped <= len(spoken) <= user_turns(stack), spoken
    assert len({t["seq"] for t in spoken}) == len(spoken)


def task_marks(stack: Stack, session_id: str) -> tuple[str, ...]:
    """What the names of a live call's tasks contain: its session id, its backend's id."""
    session = stack.app.state.sessions.get(session_id)
    assert session is not None, f"{session_id} is not live"
    return session_id, f"{id(session.backend):x}"


def leaked_tasks(marks: tuple[str, ...]) -> list[str]:
    """Tasks of the call still alive after it ended (the session's, its backend's)."""
    names = [t.get_name() for t in asyncio.all_tasks() if not t.done()]
    return [n for n in names if any(m in n for m in marks)]


def model_audio_of(stack: Stack, session_index: int) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"])
        for e in stack.mock.sessions[session_index].sent
        if e["type"] == "response.output_audio.delta"
    )


def model_items_audio(stack: Stack) -> list[bytes]:
    """The audio of every assistant item, in the order the mock's sessions sent it."""
    out: list[bytes] = []
    for s in stack.mock.sessions:
        items: dict[str, bytearray] = {}
        for e in s.sent:
            if e["type"] == "response.output_audio.delta":
                items.setdefault(e["item_id"], bytearray()).extend(base64.b64decode(e["delta"]))
        out += [bytes(a) for a in items.values()]
    return out


def assert_all_played_in_order(played: bytes, items: list[bytes]) -> None:
    """Each item's audio played whole, in order, nothing else but the silence that pads an
    item's last 20 ms frame."""
    at = 0
    for audio in items:
        found = played.find(audio, at)
        assert found >= 0, f"an item's audio did not play whole (after byte {at})"
        assert set(played[at:found]) <= {0xFF}, "something else played between items"
        at = found + len(audio)
    assert set(played[at:]) <= {0xFF}
    assert len(played) - sum(map(len, items)) < 160 * len(items)
