"""Ctrl-C on `foreman serve` (a real process) with a live phone call and an event stream
client: the call hears a goodbye, is hung up and recorded, the stream ends cleanly, the
process exits with status 0 and no traceback. A second Ctrl-C exits at once, in one line.
(Draining with a grace period: test_serve_crash_and_drain.py.)"""

from __future__ import annotations

import signal
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from served import EventReader, Served, served_foreman

from foreman.session.registry import SHUTDOWN_REASON
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

GREETING = Scenario([Rule(Match.any(), Reply.say("Hello, Foreman here."))])
NO_GRACE = "[limits]\nshutdown_grace_s = 0.0\n"  # straight to the goodbye
TRACEBACK_MARKS = ("Traceback", "CancelledError", "Exception in ASGI application")


def stored_call(db: Path, call_sid: str) -> tuple[str, float | None]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT reason, ended_at FROM calls WHERE call_sid = ?", (call_sid,)
        ).fetchone()
    assert row is not None, f"no record of {call_sid}"
    return row[0], row[1]


async def live_call(served: Served, events: EventReader) -> str:
    """Dial in as the owner; return the call's sid once its session is ready."""
    caller = served.caller()
    await caller.dial()
    served.rest.add_live_call(caller.call_sid, caller.remote_hangup)
    await events.next("session.ready", session_id=f"call-{caller.call_sid}")
    await served.mock.wait_for_server_event("response.done", timeout=unit(10))
    return caller.call_sid


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
async def test_one_ctrl_c_hangs_up_records_closes_streams_and_exits(
    tmp_path: Path, sig: signal.Signals
) -> None:
    async with served_foreman(tmp_path, GREETING, extra=NO_GRACE) as served:
        events = EventReader(served.base)
        caller = served.caller(from_="+15550000123")  # a second, unknown caller
        try:
            call_sid = await live_call(served, events)
            await caller.dial()
            served.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            await events.next("session.ready", session_id=f"call-{caller.call_sid}")

            served.interrupt(sig)
            status = await served.exited(unit(15))  # the goodbye is a few seconds long

            await events.ended()  # the stream closed cleanly: no error from the client
            assert events.ended_cleanly
        finally:
            await events.aclose()
            await caller.aclose()
    assert status == 0, served.output.text
    assert not any(mark in served.output.text for mark in TRACEBACK_MARKS), served.output.text
    # Both calls were hung up through Twilio REST, politely, and their records written.
    assert sorted(served.rest.hangups) == sorted([call_sid, caller.call_sid]), served.output.text
    for sid in (call_sid, caller.call_sid):
        reason, ended_at = stored_call(served.db, sid)
        assert reason == SHUTDOWN_REASON and ended_at is not None
    # Clients of the event stream heard about it before the stream ended.
    recorded = [e.data for e in events.events if e.kind == "call.recorded"]
    assert {r["call_sid"]: r["reason"] for r in recorded} == {
        call_sid: SHUTDOWN_REASON,
        caller.call_sid: SHUTDOWN_REASON,
    }
    assert "Application shutdown complete" in served.output.text  # the stores were closed


@pytest.fixture
def silent_twilio() -> Iterator[str]:
    """A Twilio REST address that accepts connections and never answers: a hang-up through
    it hangs, so the shutdown is still busy when the second Ctrl-C comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


async def test_a_second_ctrl_c_exits_at_once_in_one_line(
    tmp_path: Path, silent_twilio: str
) -> None:
    async with served_foreman(tmp_path, GREETING, rest_base=silent_twilio) as served:
        events = EventReader(served.base)
        try:
            call_sid = await live_call(served, events)
            served.interrupt()
            shutting_down = await served.output.line("live call\\(s\\) may go on for")
            served.interrupt()
            status = await served.exited(unit(5))
        finally:
            await events.aclose()
    text = served.output.text
    assert not any(mark in text for mark in TRACEBACK_MARKS), text
    # It did not wait for the hang-up (Twilio never answers) nor run the shutdown.
    assert status == 130
    after = served.output.lines[served.output.lines.index(shutting_down.string) + 1 :]
    assert len(after) == 1 and "SIGINT again: exiting now" in after[0], after
    assert "Application shutdown complete" not in text
    # The call's record stays open; the next start-up closes it as interrupted.
    assert stored_call(served.db, call_sid) == ("", None)
