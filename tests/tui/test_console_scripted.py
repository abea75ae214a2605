"""The console against a scripted client, for what a real server rarely does on cue: events
lost on the way, a prompt answered elsewhere or already gone, a countdown running out,
arguments that try to hide what they say."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from scripted import CALL, DESK, ScriptedClient, event, fixed_clock, prompt, status
from textual.pilot import Pilot
from tui_stack import until

from foreman.client import ApiError, ApprovalPrompt
from foreman.clock import ManualClock
from foreman.tui.app import ForemanApp
from foreman.tui.approval import ApprovalScreen


@contextlib.asynccontextmanager
async def scripted(
    client: ScriptedClient, clock: ManualClock | None = None
) -> AsyncIterator[tuple[ForemanApp, Pilot[None]]]:
    app = ForemanApp(client, clock=clock or fixed_clock())
    async with app.run_test(size=(120, 36)) as pilot:
        await until(app, pilot, lambda: client.reads["wake"] > 0 and app.model.status is not None)
        yield app, pilot


async def test_events_lost_on_the_way_mean_reading_everything_again() -> None:
    client = ScriptedClient(status=status(active=False))
    async with scripted(client) as (app, pilot):
        assert dict(client.reads) == {"status": 1, "calls": 1, "approvals": 1, "wake": 1}
        client.push(event(1, "session.ready", session_id=DESK))
        client.push(event(0, "events.dropped", count=3))
        await until(app, pilot, lambda: client.reads["wake"] == 2)
        assert dict(client.reads) == {"status": 2, "calls": 2, "approvals": 2, "wake": 2}
        assert "missed 3 events: reading the state again" in app.log_lines
        client.push(event(5, "session.ready", session_id=DESK))
        client.push(event(7, "session.ready", session_id=DESK))  # 6 never came
        await until(app, pilot, lambda: client.reads["wake"] == 3)


async def test_a_prompt_answered_elsewhere_gives_way_to_the_next() -> None:
    first, second = prompt(id="apr_1", created_at=1.0), prompt(id="apr_2", tool="place_call")
    client = ScriptedClient(status=status(), approvals=[first, second])
    async with scripted(client) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, ApprovalScreen) and screen.shown is not None
        assert screen.shown.prompt.id == "apr_1" and "(1 of 2 waiting)" in screen.text
        # The caller said yes on the phone: the prompt is decided without this console.
        client.push(event(1, "approval.decided", **{**first.raw, "state": "approved"}))
        await until(app, pilot, lambda: list(app.model.approvals) == ["apr_2"])
        assert screen.shown is not None and screen.shown.prompt.id == "apr_2"
        assert "Approve place_call?" in screen.text and "waiting)" not in screen.text
        client.push(event(2, "approval.decided", **{**second.raw, "state": "expired"}))
        await until(app, pilot, lambda: not app.model.approvals)
        assert not isinstance(app.screen, ApprovalScreen)


class Refusing(ScriptedClient):
    """Answers every approval with the server's 409: no longer pending."""

    answers: list[tuple[str, bool, str | None]]

    async def answer_approval(
        self, approval_id: str, approve: bool, note: str | None = None
    ) -> ApprovalPrompt:
        self.answers = [*getattr(self, "answers", []), (approval_id, approve, note)]
        raise ApiError(409, {"message": "approval apr_1 is already expired"})


async def test_an_answer_to_a_prompt_that_is_gone_is_told_not_lost() -> None:
    client = Refusing(status=status(), approvals=[prompt(id="apr_1")])
    async with scripted(client) as (app, pilot):
        await pilot.press("e")
        await pilot.press("o", "k", "enter", "y", "y")  # the second y is not sent again
        await until(app, pilot, lambda: not app.model.approvals)
        assert client.answers == [("apr_1", True, "ok")]
        assert any("no longer waiting" in line for line in app.log_lines)
        assert not isinstance(app.screen, ApprovalScreen)


async def test_the_countdown_runs_out() -> None:
    clock = fixed_clock()
    client = ScriptedClient(status=status(), approvals=[prompt(expires_in_s=95.0)])
    async with scripted(client, clock) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, ApprovalScreen) and "answer within 1:35" in screen.text
        clock.advance(90.2)
        client.push(event(1, "session.ready", session_id=CALL))  # any event redraws
        await until(app, pilot, lambda: "answer within 0:05" in screen.text)
        clock.advance(5)
        client.push(event(2, "session.ready", session_id=CALL))
        await until(app, pilot, lambda: "timed out: the tool will not run" in screen.text)


async def test_arguments_that_hide_characters_show_them() -> None:
    sneaky: dict[str, Any] = {"to": "+1555\u202e0000111", "body": "ok\x1b[2Jgone"}
    client = ScriptedClient(status=status(), approvals=[prompt(arguments=sneaky)])
    async with scripted(client) as (app, _):
        screen = app.screen
        assert isinstance(screen, ApprovalScreen)
        assert "+1555\\u202e0000111" in screen.text and "ok\\u001b[2Jgone" in screen.text
        assert "\u202e" not in screen.text and "\x1b" not in screen.text
