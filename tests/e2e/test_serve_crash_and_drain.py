"""`foreman serve` (a real process) with two live calls and a pending approval:

* `kill -9`, then a restart on the same database: both calls and the prompt were on disk
  before the crash (written when they began), and the restart closes them as interrupted
  (dated to the last heartbeat, before the kill) and expires the prompt, with an audit row;
* SIGTERM: a new call is told to call back (no stream), a call that ends within the grace
  keeps its own reason, the call still live then hears the goodbye and is hung up through
  Twilio REST, its prompt is cancelled, and the process exits 0."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from served import ANN, EventReader, Served, served_foreman

from foreman.phone.clips import clip
from foreman.session.registry import SHUTDOWN_REASON
from foreman.stores import INTERRUPTED_REASON
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(
    [
        Rule(Match(instructions="Greet"), Reply.say("Hello.")),
        Rule(Match.audio(1), Reply.call("send_sms", {"to": ANN, "body": "Running late"})),
        Rule(Match.any(), Reply.say("I am waiting for your approval.")),
    ],
    transcripts={1: "Text Ann that I am running late."},
)
POLL_S = 0.05  # the database file tells no one when it changes: it is read until it does


def rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


async def stored(db: Path, sql: str, *args: Any, count: int) -> list[sqlite3.Row]:
    """The rows `sql` selects, once there are `count` of them (a deadline, not a delay).
    Another process's file has no event to wait on: it is read until it shows them."""
    async with asyncio.timeout(unit(10)):
        while True:
            found = rows(db, sql, *args)
            if len(found) >= count:
                return found
            await asyncio.sleep(POLL_S)


async def two_calls_and_a_prompt(
    served: Served, events: EventReader
) -> tuple[FakeTwilioCaller, FakeTwilioCaller, str]:
    """The owner and an unknown caller on the line; the owner asked for an SMS, which waits
    for approval. Returns both callers and the prompt's id."""
    owner, other = served.caller(), served.caller(from_="+15550000123")
    for caller in (owner, other):
        served.rest.add_live_call(caller.call_sid, caller.remote_hangup)
        await caller.dial()
        await events.next("session.ready", session_id=f"call-{caller.call_sid}")
    await owner.play_speech(synthesize("text Ann that I am running late", 8000))
    await owner.send_silence(900)  # the end of the turn for server VAD
    prompt = await events.next("approval.prompt")
    assert prompt.data["tool"] == "send_sms"
    return owner, other, str(prompt.data["id"])


async def test_kill_9_then_restart_closes_both_calls_and_expires_the_prompt(
    tmp_path: Path,
) -> None:
    async with served_foreman(tmp_path, SCENARIO) as served:
        events = EventReader(served.base)
        owner = other = None
        try:
            owner, other, prompt_id = await two_calls_and_a_prompt(served, events)
            sids = sorted([owner.call_sid, other.call_sid])
            # Written when they began: on disk while live, before anything ended.
            live = await stored(
                served.db, "SELECT call_sid FROM calls WHERE ended_at IS NULL", count=2
            )
            assert sorted(r["call_sid"] for r in live) == sids
            pending = await stored(
                served.db, "SELECT state FROM approvals WHERE id = ?", prompt_id, count=1
            )
            assert pending[0]["state"] == "pending"
            killed_at = time.time()
            served.proc.kill()  # SIGKILL: nothing runs, nothing is flushed
            assert await served.exited(unit(5)) == -signal.SIGKILL
        finally:
            await events.aclose()
            for caller in (owner, other):
                if caller is not None:
                    await caller.aclose()
    assert "shutting down" not in served.output.text

    async with served_foreman(tmp_path, SCENARIO) as again:
        for sid in sids:
            await again.output.line(f"call {sid} was interrupted by a crash")
        await again.output.line("1 approval prompt\\(s\\) left by a crash expired")
    calls = rows(again.db, "SELECT * FROM calls ORDER BY call_sid")
    assert [c["call_sid"] for c in calls] == sids
    for call in calls:
        assert call["reason"] == INTERRUPTED_REASON
        # Dated to the last heartbeat: after the call began, not after the kill.
        assert call["started_at"] <= call["ended_at"] <= killed_at
    (approval,) = rows(again.db, "SELECT * FROM approvals")
    assert (approval["id"], approval["state"]) == (prompt_id, "expired")
    assert approval["created_at"] <= approval["answered_at"] <= killed_at
    (audit,) = rows(again.db, "SELECT * FROM tool_audit WHERE approval_id = ?", prompt_id)
    assert (audit["tool"], audit["decision"], audit["outcome"]) == (
        "send_sms",
        "expired",
        "not run",
    )
    assert again.rest.messages == [] and served.rest.messages == []  # nothing was sent


async def test_sigterm_drains_calls_with_their_real_reasons(tmp_path: Path) -> None:
    grace = "[limits]\nshutdown_grace_s = 4.0\n"
    async with served_foreman(tmp_path, SCENARIO, extra=grace) as served:
        events = EventReader(served.base)
        owner = other = None
        late = served.caller(from_="+15550000124")
        try:
            owner, other, prompt_id = await two_calls_and_a_prompt(served, events)
            served.interrupt(signal.SIGTERM)
            await served.output.line("2 live call\\(s\\) may go on for 4 s")

            # Still listening: a new call is told to call back, and no stream is opened.
            answer = await late.post_voice_webhook()
            assert answer.status_code == 200
            twiml = ElementTree.fromstring(answer.text)
            assert twiml.find("Say") is not None and twiml.find("Hangup") is not None
            assert twiml.find("Connect") is None

            await other.hangup()  # ends within the grace: its own reason
            await owner.wait_closed(timeout=unit(20))  # the goodbye, then the REST hang-up
            status = await served.exited(unit(10))
        finally:
            await events.aclose()
            for caller in (owner, other, late):
                if caller is not None:
                    await caller.aclose()
    assert status == 0, served.output.text
    assert "Traceback" not in served.output.text
    goodbye = clip("goodbye")
    assert goodbye in bytes(owner.played)[-len(goodbye) - 160 :]
    assert served.rest.hangups == [owner.call_sid]  # the other caller had hung up already
    reasons = {r["call_sid"]: r["reason"] for r in rows(served.db, "SELECT * FROM calls")}
    assert reasons == {owner.call_sid: SHUTDOWN_REASON, other.call_sid: "caller hung up"}
    (approval,) = rows(served.db, "SELECT state FROM approvals WHERE id = ?", prompt_id)
    assert approval["state"] == "cancelled"
    (audit,) = rows(served.db, "SELECT * FROM tool_audit WHERE approval_id = ?", prompt_id)
    assert (audit["decision"], audit["outcome"]) == ("cancelled", "cancelled")
    assert served.rest.messages == []
