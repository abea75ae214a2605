"""Approvals answered from the console, checked where it matters: the SMS reaches the Twilio
REST stand-in only when the owner approved it."""

from __future__ import annotations

from textual.pilot import Pilot
from tui_stack import ANN, Stack, console, type_text, until, until_said

from foreman.client import ForemanClient
from foreman.tui.app import ForemanApp
from foreman.tui.approval import ApprovalScreen


async def ask_for_the_sms(app: ForemanApp, pilot: Pilot[None]) -> ApprovalScreen:
    """Voice on, then the typed turn that makes the model call send_sms (high risk)."""
    await until(app, pilot, lambda: app.model.connected and app.model.status is not None)
    await pilot.press("v")
    await until(app, pilot, lambda: bool(app.model.status and app.model.status.active))
    await pilot.press("i")
    await type_text(pilot, "text Ann")
    await pilot.press("enter")
    await until(app, pilot, lambda: bool(app.model.approvals))
    assert isinstance(app.screen, ApprovalScreen)
    return app.screen


async def test_approved_from_the_console_the_sms_is_sent(stack: Stack) -> None:
    async with console(stack.url) as (app, pilot):
        prompt = await ask_for_the_sms(app, pilot)
        shown = prompt.text
        assert "Approve send_sms?" in shown
        assert f"\nto    {ANN}\nbody  Running late" in shown  # complete, one field a line
        assert "asked by" in shown and "on local_voice" in shown and "risk high" in shown
        assert "answer within 1:5" in shown or "answer within 2:00" in shown  # 120 s timeout
        assert stack.rest.messages == []  # nothing is sent before the answer

        await pilot.press("e")
        await type_text(pilot, "go ahead")
        await pilot.press("enter", "y")
        (sms,) = await stack.rest.wait_for("message")
        assert sms["to"] == ANN and sms["body"] == "Running late"

        await until_said(app, pilot, "I have dealt with the message.")
        assert not isinstance(app.screen, ApprovalScreen) and app.model.approvals == {}
        assert "send_sms — done" in app.transcript_text
        assert "You: text Ann" in app.transcript_text

    async with ForemanClient(stack.url, token="") as client:
        (entry, *_) = await client.audit(limit=5)
    assert entry.tool == "send_sms" and entry.decision == "approved"
    assert entry.approver == "api"


async def test_denied_from_the_console_nothing_is_sent(stack: Stack) -> None:
    async with console(stack.url) as (app, pilot):
        await ask_for_the_sms(app, pilot)
        await pilot.press("n")
        await until_said(app, pilot, "send_sms — denied by api")
        await until_said(app, pilot, "I have dealt with the message.")
        assert not isinstance(app.screen, ApprovalScreen)

    async with ForemanClient(stack.url, token="") as client:
        (entry, *_) = await client.audit(limit=5)
    assert entry.tool == "send_sms" and entry.decision == "denied"
    # The model has answered after the refusal: had anything been sent, it would be here.
    assert stack.rest.messages == []


async def test_put_away_and_brought_back(stack: Stack) -> None:
    async with console(stack.url) as (app, pilot):
        await ask_for_the_sms(app, pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ApprovalScreen)
        assert "1 approval waiting: press a to answer" in app.header_text
        await pilot.press("escape", "a")  # out of the chat input (focused again), then a
        await pilot.pause()
        assert isinstance(app.screen, ApprovalScreen)
        await pilot.press("y")
        await stack.rest.wait_for("message")
