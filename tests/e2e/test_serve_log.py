"""What `foreman serve` logs at INFO for one phone call with a tool call and an approval:
exactly one line per step a user follows, in order, uvicorn's lines in the same format, and
Foreman's session id the same in the log, the events and the audit log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from served import ANN, OWNER, EventReader, served_foreman

from foreman.client import ForemanClient
from foreman.client_types import Event
from foreman.testing.mock_realtime import Call, Match, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(
    [
        Rule(Match(instructions="Greet"), Reply.say("Hello.")),
        Rule(Match.audio(1), Reply.call("send_sms", {"to": ANN, "body": "Running late"})),
        Rule(Match.tool("send_sms"), Reply.say("Sent. Goodbye!").then(Call.of("end_call", {}))),
        Rule(Match.any(), Reply.say("It waits for approval.")),
    ],
    transcripts={1: "Text Ann that I am running late."},
)
# One format for every line: time, level, short logger name, message.
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<name>[\w.]+): (?P<msg>.*)$"
)


async def test_one_call_with_an_approval_logs_one_line_per_step(tmp_path: Path) -> None:
    async with (
        served_foreman(tmp_path, SCENARIO) as served,
        ForemanClient(served.base) as client,
        served.caller() as caller,
    ):
        events = EventReader(served.base)
        try:
            await caller.dial()
            served.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            await served.mock.wait_for_server_event("response.done", timeout=unit(10))
            await caller.play_speech(synthesize("text Ann that I am running late", 8000))
            await caller.send_silence(900)  # the end of the turn for server VAD
            prompt = await events.next("approval.prompt")
            await client.answer_approval(prompt.data["id"], approve=True)
            await served.rest.wait_for("message", timeout=unit(15))
            await events.next("call.recorded", call_sid=caller.call_sid)
            audit = await client.audit()
        finally:
            served.interrupt()
            status = await served.exited(unit(5))
            await events.aclose()
    assert status == 0

    lines = served.output.lines
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), [line for line, m in zip(lines, parsed, strict=True) if not m]
    start = next(
        i for i, m in enumerate(parsed) if m and m["msg"] == "Application startup complete."
    )
    logged = [f"{m['level']} {m['name']}: {m['msg']}" for m in parsed[start + 1 :] if m]

    sid, session = caller.call_sid, f"call-{caller.call_sid}"
    ready = event_data(events.events, "session.ready")
    approval = prompt.data["id"]
    expected = [
        rf"INFO call: {sid} incoming from \{OWNER} to \{caller.to}",
        rf"INFO session: {session} started: phone, caller Godfather \(\{OWNER}, owner\), "
        rf"model gpt-realtime\S*, backend openai-realtime, "
        rf"provider_session_id {ready['provider_session_id']}",
        rf"INFO tool: send_sms \(call_\w+\) in {session}: needs approval: .+",
        rf"INFO approval: {approval} asked: send_sms for Godfather in {session}, "
        r"expires in 120 s",
        rf"INFO approval: {approval} approved by api",
        rf"INFO tool: end_call \(call_\w+\) in {session}: allow: low risk",
        rf"INFO session: {session} ended: end_call",
        rf"INFO call: {sid} ended: end_call after \d+\.\d s",
        r"INFO foreman: shutting down: ending calls, sessions and event streams .*",
        r"INFO uvicorn: Shutting down",
        r"INFO uvicorn: Waiting for application shutdown\.",
        r"INFO uvicorn: Application shutdown complete\.",
        r"INFO uvicorn: Finished server process \[\d+\]",
    ]
    assert len(logged) == len(expected), "\n".join(logged)
    for line, pattern in zip(logged, expected, strict=True):
        assert re.fullmatch(pattern, line), f"{line!r} does not match {pattern!r}"

    # One session id everywhere; the provider's id only as provider_session_id.
    started = event_data(events.events, "session.started")
    assert started["session_id"] == ready["session_id"] == session
    assert {entry.session_id for entry in audit} == {session}
    assert {entry.tool for entry in audit} == {"send_sms", "end_call"}
    provider_id = ready["provider_session_id"]
    assert [line for line in lines if provider_id in line] == [
        line for line in lines if f"provider_session_id {provider_id}" in line
    ]


def event_data(events: list[Event], kind: str) -> dict[str, Any]:
    return dict(next(e for e in events if e.kind == kind).data)
