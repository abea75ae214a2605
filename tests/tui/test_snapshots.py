"""Pictures of the console (SVG, pytest-textual-snapshot): the main screen in the middle of
a day and the approval prompt with a long message. Deterministic: a scripted client with
fixed records and ids, and a clock that does not move.

After a deliberate change of the look: `pytest tests/tui/test_snapshots.py --snapshot-update`,
then look at the new pictures before committing them."""

from __future__ import annotations

from typing import Any

from scripted import (
    CALL,
    DESK,
    ScriptedClient,
    event,
    fixed_clock,
    live_calls,
    prompt,
    status,
)
from textual.pilot import Pilot

from foreman.client import WakeStatus
from foreman.tui.app import ForemanApp

SIZE = (120, 36)
WAKE = WakeStatus.from_json(
    {"enabled": True, "listening": True, "detector": "pocketsphinx", "last_trigger": None}
)


def day_events() -> list[Any]:
    approved = prompt(
        tool="send_sms",
        state="approved",
        approver="api",
        session_id=DESK,
        arguments={"to": "+15550000111", "body": "Ten minutes late"},
    ).raw
    said = [
        ("user", "What is on my calendar tomorrow?", None),
        ("assistant", "A dentist appointment at nine, and lunch with Ann at one.", None),
        ("user", "Text Ann that I will be ten minutes late.", None),
    ]
    events = [
        event(1, "session.started", session_id=DESK, channel="local_voice", caller="Owner",
              role="owner", backend="openai-realtime", model="gpt-realtime-2.1"),
        *(event(2 + i, "session.transcript", session_id=DESK, role=r, text=t, heard_ms=h)
          for i, (r, t, h) in enumerate(said)),
        event(5, "session.tool_request", session_id=DESK, call_id="call_1", name="send_sms"),
        event(6, "tool.call", session_id=DESK, call_id="call_1", tool="send_sms",
              decision="needsapproval", reason="high risk"),
        event(7, "approval.decided", **approved),
        event(8, "tool.result", session_id=DESK, call_id="call_1", ok=True),
        event(9, "session.transcript", session_id=DESK, role="assistant",
              text="Done: Ann knows you will be ten minutes late.", heard_ms=None),
        event(10, "session.transcript", session_id=DESK, role="user",
              text="And what about the weekend?", heard_ms=None),
        event(11, "session.barge_in", session_id=DESK, segment="item_9", heard_ms=1840),
        event(12, "session.transcript", session_id=DESK, role="assistant",
              text="On Saturday you have the plumber coming at ten, and on Sunday there is "
              "the family lunch at your sister's place, which", heard_ms=None),
        event(13, "session.transcript", session_id=DESK, role="user",
              text="Stop, that is enough for now.", heard_ms=None),
        event(14, "session.started", session_id=CALL, channel="phone", caller="Ann",
              role="contact", call_sid=CALL[5:], direction="inbound", **{"from": "+15550000111"}),
        event(15, "session.transcript", session_id=CALL, role="assistant",
              text="Hello Ann, Foreman here.", heard_ms=None),
    ]  # fmt: skip
    return events


def settled(app: ForemanApp, last_seq: int) -> bool:
    model = app.model
    reads = app.client.reads  # type: ignore[attr-defined]
    return (
        model.last_seq == last_seq
        and reads["status"] > 0
        and reads["calls"] > 0
        and reads["approvals"] > 0
        and reads["wake"] > 0
        and model.status is not None
    )


def test_main_screen(snap_compare: Any) -> None:
    events = day_events()
    client = ScriptedClient(status=status(), calls=live_calls(), wake=WAKE, events=events)
    app = ForemanApp(client, clock=fixed_clock())

    async def ready(pilot: Pilot[None]) -> None:
        await app.until(lambda: settled(app, len(events)))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_approval_prompt(snap_compare: Any) -> None:
    letter = (
        "Dear Ann,\n\nI am running about ten minutes late for lunch: the dentist took longer "
        "than planned and the traffic on the bridge is slow. Please order without me; I "
        "would like the soup of the day and a sparkling water.\n\n"
        + "\n".join(f"{n}. point {n} of the agenda for the afternoon" for n in range(1, 16))
        + "\n\nSee you soon,\nThe owner"
    )
    first = prompt(arguments={"to": "ann@example.com", "subject": "Late", "body": letter})
    second = prompt(id="apr_0000000000000002", tool="place_call", created_at=2e9)
    client = ScriptedClient(
        status=status(active=False), calls=live_calls(), approvals=[first, second], wake=WAKE
    )
    app = ForemanApp(client, clock=fixed_clock())

    async def ready(pilot: Pilot[None]) -> None:
        await app.until(lambda: len(app.model.approvals) == 2)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)
