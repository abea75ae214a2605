"""Owner confirmation by voice on a real call: only the verified owner's spoken yes
approves a high-risk action; anyone else's yes approves nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from phone_stack import Stack, phone_stack

from foreman.config import IdentityConfig
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit

OWNER = "+15550000100"
ANN = "+15550000111"
SCENARIO = Scenario(
    [
        Rule(Match(instructions="Greet"), Reply.say("Hello.")),
        Rule(Match.audio(1), Reply.call("send_sms", {"to": ANN, "body": "Running late"})),
        Rule(Match.tool("send_sms"), Reply.say("Sent.")),
        Rule(Match.any(), Reply.say("Shall I send it?")),
    ],
    transcripts={1: "Text Ann that I am running late.", 2: "Yes, send it."},
)


async def next_event(stack: Stack, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(unit(15)):
        while True:
            event = await stack.events.get()
            if event.kind == kind:
                return event.data


async def speak(caller: Any, text: str) -> None:
    await caller.play_speech(synthesize(text, 8000))
    await caller.send_silence(900)  # the end of the turn for server VAD


async def test_owners_spoken_yes_approves_and_the_sms_is_sent(tmp_path: Any) -> None:
    ident = IdentityConfig(owner_numbers=[OWNER], contacts={"Ann": ANN})
    async with (
        phone_stack(SCENARIO, identity=ident, tools_db=str(tmp_path / "a.db")) as stack,
        stack.caller(from_=OWNER) as caller,
    ):
        await caller.dial()
        await speak(caller, "text Ann that I am running late")
        prompt = await next_event(stack, "approval.prompt")
        assert prompt["tool"] == "send_sms" and stack.rest.messages == []
        await speak(caller, "yes, send it")
        (sms,) = await stack.rest.wait_for("message", timeout=unit(15))
        assert sms["to"] == ANN and sms["body"] == "Running late"
        decided = await next_event(stack, "approval.decided")
        assert decided["id"] == prompt["id"] and decided["state"] == "approved"
        await caller.hangup()


async def test_a_contacts_yes_approves_nothing(tmp_path: Any) -> None:
    ident = IdentityConfig(owner_numbers=[OWNER], contacts={"Bob": "+15550000122"})
    async with (
        phone_stack(SCENARIO, identity=ident, tools_db=str(tmp_path / "a.db")) as stack,
        stack.caller(from_="+15550000122") as caller,
    ):
        await caller.dial()
        await speak(caller, "text Ann that I am running late")
        prompt = await next_event(stack, "approval.prompt")
        await speak(caller, "yes, send it")
        # The bridge publishes a user transcript and hands it to the dispatcher in one
        # step, so once the bus shows the "yes", the dispatcher has judged it.
        while (await next_event(stack, "session.transcript"))["text"] != "Yes, send it.":
            pass
        # ...and still nothing was sent: only the owner (at the prompt) can approve.
        assert stack.rest.messages == []
        pending = stack.app.state.tools.approvals.pending()
        assert [a.id for a in pending] == [prompt["id"]]
        await caller.hangup()
