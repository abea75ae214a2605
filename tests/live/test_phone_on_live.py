"""Phone calls on GPT-Live end to end: the fake Twilio caller through `foreman serve`'s app
to the Live mock. µ-law passes through bit-exact, the model handles barge-in by itself (no
`clear`, nothing truncated), `end_call` hangs up promptly after the goodbye was heard, and
the owner's spoken yes (transcript pieces, never a final) approves a delegated tool, and a
contact's call runs whole with a tool approved over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from live_phone import live_phone_stack

from foreman.audio.formats import Encoding
from foreman.config import IdentityConfig
from foreman.testing.mock_realtime import Call, Match, Reply, Rule, Scenario
from foreman.testing.mock_realtime.audio_io import speech
from foreman.testing.mock_realtime.live import LiveMockSession
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

GREETING = "Hi, Foreman here."
LONG_ANSWER = (
    "Tomorrow will be sunny in the morning with a light breeze from the west, "
    "clouds in the afternoon, and a chance of rain in the evening after six."
)
GOODBYE = "Goodbye!"


def sent(session: LiveMockSession, kind: str, pred: Any = lambda e: True) -> Any:
    return next((e for e in session.sent if e["type"] == kind and pred(e)), None)


def received(session: LiveMockSession, kind: str, pred: Any = lambda e: True) -> Any:
    return next((e for e in session.received if e["type"] == kind and pred(e)), None)


async def speak(caller: Any, text: str) -> None:
    await caller.play_speech(synthesize(text, 8000))


async def test_a_call_on_live_passthrough_barge_in_by_the_model_and_a_prompt_end_call() -> None:
    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say(GREETING)),
            Rule(Match.audio(1), Reply.say(LONG_ANSWER)),
            Rule(Match.audio(2), Reply.say(GOODBYE).then(Call.of("end_call", {}))),
        ],
        transcripts={1: "Weather tomorrow?", 2: "Stop please, goodbye."},
    )
    async with live_phone_stack(scenario) as stack:
        caller = stack.caller()
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            live = await stack.mock.wait_for_live_session(timeout=unit(10))
            start = live.received[0]
            assert start["session"]["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}
            assert "end_call" in [
                t["name"] for t in start["session"]["delegation"]["responses"]["tools"]
            ]
            greeting = await stack.mock.wait_for_live(
                lambda: received(live, "session.instructions.append"), unit(10)
            )
            assert "Greet" in greeting["content"] and greeting["delegation_id"] is None
            said = await stack.bus("session.transcript", lambda d: d["role"] == "assistant")
            assert said["text"] == GREETING
            # µ-law passthrough: what the caller played is the model's track, byte for byte
            # (speech and the silence between replies alike).
            hello = speech(GREETING, Encoding.PCMU)
            await caller.wait_played_ms(len(hello) // 8 + 300, timeout=unit(15))
            played = bytes(caller.played)
            assert played == bytes(live.audio_out[: len(played)])
            assert played.find(hello) >= 0

            # The caller asks; the long answer starts; the caller talks over it.
            await speak(caller, "Weather tomorrow?")
            await stack.mock.wait_for_live(
                lambda: sent(
                    live, "session.output_transcript.delta", lambda e: "Tomorrow" in e["delta"]
                ),
                unit(15),
            )
            heard_before = caller.played_ms
            await caller.wait_played_ms(heard_before + 600, timeout=unit(10))
            await speak(caller, "Stop please, goodbye.")
            await stack.mock.wait_for_live(lambda: live.yields or None, unit(10))
            # The model yielded by itself: no clear, nothing cut on our side.
            assert caller.clears == 0
            answer = speech(LONG_ANSWER, Encoding.PCMU)
            assert bytes(caller.played).find(answer[: len(answer) // 2]) < 0  # not heard whole

            # The goodbye is said, then end_call is delegated; the line closes promptly.
            output = await stack.mock.wait_for_live(
                lambda: received(
                    live,
                    "response.item.create",
                    lambda e: e["item"]["type"] == "function_call_output",
                ),
                unit(20),
            )
            answered_at = asyncio.get_running_loop().time()
            assert json.loads(output["item"]["output"])["ok"] is True
            hangup = await stack.rest.wait_for("hangup", timeout=unit(10))
            took = asyncio.get_running_loop().time() - answered_at
            assert hangup == [caller.call_sid]
            assert took < unit(3), f"end_call took {took:.2f} s"
            await caller.wait_closed(timeout=unit(5))
            bye = speech(GOODBYE, Encoding.PCMU)
            assert bytes(caller.played).find(bye) > 0  # the goodbye was heard in full
            assert received(live, "response.create") is None  # end_call is not continued
            assert caller.validation_errors == []
        ended = await stack.bus("session.ended")
        assert ended["reason"].startswith("end_call")
        assert ended["stats"]["barge_ins"] == 0  # the model's own yield, not a flush of ours
        assert ended["stats"]["late_audio_dropped"] == 0
        closed = sent(live, "session.closed")
        assert closed is not None and closed["reason"] == "close_requested"


OWNER = "+15550000100"
ANN = "+15550000111"


async def test_the_owners_spoken_yes_in_pieces_approves_a_delegated_tool(tmp_path: Any) -> None:
    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say("Hello.")),
            Rule(Match.audio(1), Reply.call("send_sms", {"to": ANN, "body": "Running late"})),
            Rule(Match.tool("send_sms"), Reply.say("Sent.")),
            Rule(Match.audio(2), Reply.say("Okay.")),
        ],
        transcripts={1: "Text Ann that I am running late.", 2: "Yes, send it."},
    )
    ident = IdentityConfig(owner_numbers=[OWNER], contacts={"Ann": ANN})
    async with (
        live_phone_stack(scenario, identity=ident, tools_db=str(tmp_path / "a.db")) as stack,
        stack.caller(from_=OWNER) as caller,
    ):
        await caller.dial()
        live = await stack.mock.wait_for_live_session(timeout=unit(10))
        await speak(caller, "text Ann that I am running late")
        prompt = await stack.bus("approval.prompt")
        assert prompt["tool"] == "send_sms" and stack.rest.messages == []
        # While the approval is pending, the output is withheld and the model is told so.
        note = await stack.mock.wait_for_live(
            lambda: received(
                live, "session.instructions.append", lambda e: "approval" in e["content"].lower()
            ),
            unit(10),
        )
        assert note["delegation_id"] is None
        assert received(live, "response.item.create") is None
        await speak(caller, "yes, send it")
        (sms,) = await stack.rest.wait_for("message", timeout=unit(15))
        assert sms["to"] == ANN and sms["body"] == "Running late"
        decided = await stack.bus("approval.decided")
        assert decided["id"] == prompt["id"] and decided["state"] == "approved"
        # The yes came as pieces, none final, and Foreman joined them into one utterance.
        pieces = [
            e["delta"]
            for e in live.sent
            if e["type"] == "session.input_transcript.delta" and e["start_ms"] > 0
        ]
        assert "".join(pieces[-2:]).strip().endswith("send it.") and len(pieces) >= 4
        # One output for the call, the real result, then one continuation.
        await stack.mock.wait_for_live(lambda: received(live, "response.create"), unit(10))
        outputs = [e for e in live.received if e["type"] == "response.item.create"]
        assert len(outputs) == 1 and json.loads(outputs[0]["item"]["output"])["ok"] is True
        said = await stack.bus("session.transcript", lambda d: "Sent." in d["text"])
        assert said["role"] == "assistant"
        await caller.hangup()


async def test_a_denied_tool_is_answered_not_done_and_dtmf_is_a_silent_fact(tmp_path: Any) -> None:
    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say("Hello.")),
            Rule(Match.audio(1), Reply.call("send_sms", {"to": ANN, "body": "Hi"})),
            Rule(Match.tool("send_sms"), Reply.say("I cannot do that.")),
        ],
        transcripts={1: "Text Ann hi."},
    )
    ident = IdentityConfig(owner_numbers=[OWNER], contacts={"Ann": ANN})
    async with (
        live_phone_stack(scenario, identity=ident, tools_db=str(tmp_path / "a.db")) as stack,
        stack.caller(from_="+15550000999") as caller,  # an unknown caller
    ):
        await caller.dial()
        live = await stack.mock.wait_for_live_session(timeout=unit(10))
        await caller.send_dtmf("5")
        fact = await stack.mock.wait_for_live(
            lambda: received(live, "session.thinking.append"), unit(10)
        )
        assert "pressed 5" in fact["content"] and fact["delegation_id"] is None
        await speak(caller, "text Ann hi")
        output = await stack.mock.wait_for_live(
            lambda: received(live, "response.item.create"), unit(15)
        )
        result = json.loads(output["item"]["output"])
        assert result["ok"] is False and "not" in json.dumps(result).lower()
        await stack.mock.wait_for_live(lambda: received(live, "response.create"), unit(10))
        said = await stack.bus("session.transcript", lambda d: "cannot" in d["text"])
        assert said["role"] == "assistant"
        assert stack.rest.messages == []
        await caller.hangup()


BOB = "+15550000122"


async def test_a_contacts_call_on_live_with_a_tool_approved_over_http(tmp_path: Any) -> None:
    """The whole phone flow on Live: greeting by instruction, the caller speaks, µ-law comes
    back bit-exact, a delegated SMS waits for the owner's answer over HTTP (a contact cannot
    confirm by voice), is sent only then, the result is spoken and `end_call` hangs up."""
    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say(GREETING)),
            Rule(Match.audio(1), Reply.call("send_sms", {"to": ANN, "body": "Bob is late"})),
            Rule(Match.tool("send_sms"), Reply.say("Sent.")),
            Rule(Match.audio(2), Reply.say(GOODBYE).then(Call.of("end_call", {}))),
        ],
        transcripts={1: "Please text Ann that I am late.", 2: "Thanks, goodbye."},
    )
    ident = IdentityConfig(owner_numbers=[OWNER], contacts={"Ann": ANN, "Bob": BOB})
    async with (
        live_phone_stack(scenario, identity=ident, tools_db=str(tmp_path / "a.db")) as stack,
        stack.caller(from_=BOB) as caller,
        httpx.AsyncClient(base_url=stack.base, timeout=unit(10)) as api,
    ):
        await caller.dial()
        stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
        live = await stack.mock.wait_for_live_session(timeout=unit(10))
        greeting = await stack.mock.wait_for_live(
            lambda: received(live, "session.instructions.append"), unit(10)
        )
        assert "Greet" in greeting["content"] and greeting["delegation_id"] is None
        hello = speech(GREETING, Encoding.PCMU)
        await caller.wait_played_ms(len(hello) // 8 + 300, timeout=unit(15))
        assert bytes(caller.played).find(hello) >= 0

        await speak(caller, "please text Ann that I am late")
        prompt = await stack.bus("approval.prompt")
        assert prompt["tool"] == "send_sms" and prompt["arguments"]["to"] == ANN
        pending = (await api.get("/api/approval/prompt")).json()["prompts"]
        assert [p["id"] for p in pending] == [prompt["id"]]
        # Pending: nothing sent, no output for the delegated call, the model told to wait.
        await stack.mock.wait_for_live(
            lambda: received(
                live, "session.instructions.append", lambda e: "approval" in e["content"].lower()
            ),
            unit(10),
        )
        assert stack.rest.messages == [] and received(live, "response.item.create") is None

        answer = {"id": prompt["id"], "approve": True}
        reply = await api.post("/api/approval/answer", json=answer)
        assert reply.status_code == 200 and reply.json()["approval"]["state"] == "approved"
        (sms,) = await stack.rest.wait_for("message", timeout=unit(15))
        assert sms["to"] == ANN and sms["body"] == "Bob is late"
        output = await stack.mock.wait_for_live(
            lambda: received(
                live, "response.item.create", lambda e: e["item"]["type"] == "function_call_output"
            ),
            unit(10),
        )
        assert sms["sid"] in output["item"]["output"]
        await stack.mock.wait_for_live(lambda: received(live, "response.create"), unit(10))
        said = await stack.bus("session.transcript", lambda d: d["text"] == "Sent.")
        assert said["role"] == "assistant"
        sent_word = speech("Sent.", Encoding.PCMU)
        await caller.wait_played_ms(caller.played_ms + len(sent_word) // 8 + 300, timeout=unit(15))
        assert bytes(caller.played).find(sent_word) > 0  # the result was heard, byte for byte

        await speak(caller, "thanks, goodbye")
        hangup = await stack.rest.wait_for("hangup", timeout=unit(20))
        assert hangup == [caller.call_sid]
        await caller.wait_closed(timeout=unit(5))
        played = bytes(caller.played)
        assert played == bytes(live.audio_out[: len(played)])  # µ-law passthrough, whole call
        assert played.find(speech(GOODBYE, Encoding.PCMU)) > 0
        assert caller.validation_errors == []
    ended = await stack.bus("session.ended")
    assert ended["reason"].startswith("end_call")
    assert len(stack.rest.messages) == 1
