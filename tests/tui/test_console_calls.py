"""A live phone call in the console: it appears with its caller, its transcript streams in
when the owner picks it, and the owner hangs it up from the console."""

from __future__ import annotations

from tui_stack import ANN, GREETING, Stack, console, until, until_said

from foreman.tui.screens import ConfirmScreen


async def test_a_live_calls_transcript_and_hanging_it_up(stack: Stack) -> None:
    async with console(stack.url) as (app, pilot):
        await until(app, pilot, lambda: app.model.connected and app.model.calls is not None)
        caller = stack.caller(from_=ANN)
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            await until(app, pilot, lambda: any(c.call_sid for c in app.model.live_calls()))
            (call,) = app.model.live_calls()
            await until(app, pilot, lambda: "calls Ann +15550000111 (in, " in app.header_text)

            await pilot.press("right_square_bracket")  # the next conversation: the call
            await pilot.pause()
            assert app.selected == call.key
            await until_said(app, pilot, f"Assistant: {GREETING}")
            assert "call from Ann started" in app.transcript_text

            await pilot.press("h")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            assert await stack.rest.wait_for("hangup") == [caller.call_sid]
            await caller.wait_closed()
            await until_said(app, pilot, "call ended: hung up by the owner")
            await until(app, pilot, lambda: "calls none" in app.header_text)
            assert not call.live
