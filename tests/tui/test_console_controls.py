"""The console's controls against the real server: voice on and off, the wake sentinel on
and off, placing a call, typing without text chat, and the help overlay."""

from __future__ import annotations

from tui_stack import Stack, console, serve_stack, type_text, until, until_said

from foreman.testing.chat_standin import Answer, ChatStandIn, Rule, When
from foreman.tui.app import ForemanApp, help_sections
from foreman.tui.screens import HelpScreen, PlaceCallScreen, as_bindings, key_names


def connected(app: ForemanApp) -> bool:
    return app.model.connected and app.model.status is not None and app.model.calls is not None


async def test_voice_on_and_off(stack: Stack) -> None:
    async with console(stack.url) as (app, pilot):
        await until(app, pilot, lambda: connected(app))
        assert "mode TEXT" in app.header_text and "realtime idle" in app.header_text
        await pilot.press("v")
        await until(app, pilot, lambda: "mode VOICE" in app.header_text)
        assert "realtime active" in app.header_text and "model gpt-realtime-2.1" in app.header_text
        assert "since " in app.header_text and stack.app.state.sessions.mode == "voice"
        assert "voice session started" in app.transcript_text
        await pilot.press("v")
        await until(app, pilot, lambda: "mode TEXT" in app.header_text)
        assert stack.app.state.sessions.mode == "text" and len(stack.mock.sessions) == 1
        await until_said(app, pilot, "voice session ended: stopped by API")


async def test_wake_toggles_the_servers_sentinel(stack: Stack) -> None:
    desk = stack.app.state.desk
    async with console(stack.url) as (app, pilot):
        await until(app, pilot, lambda: app.model.wake is not None)
        # On, but paused: this machine has no microphone (the header says why).
        assert "wake on (paused" in app.header_text and desk.enabled
        await pilot.press("w")
        await until(app, pilot, lambda: "wake off" in app.header_text)
        assert not desk.enabled
        await pilot.press("w")
        await until(app, pilot, lambda: "wake on (paused" in app.header_text)
        assert desk.enabled
        assert "wake off" in "".join(app.log_lines) and "wake on" in "".join(app.log_lines)


async def test_place_a_call(stack: Stack) -> None:
    async with console(stack.url) as (app, pilot):
        await until(app, pilot, lambda: connected(app))
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, PlaceCallScreen)
        await type_text(pilot, "+15551234567")
        await pilot.press("enter")
        await type_text(pilot, "rent")
        await pilot.press("enter")
        (call,) = await stack.rest.wait_for("call")
        assert call["to"] == "+15551234567"
        await until(app, pilot, lambda: "calling +15551234567" in "".join(app.log_lines))
        assert not isinstance(app.screen, PlaceCallScreen)


async def test_typing_in_text_mode_without_text_chat_says_what_to_do(stack: Stack) -> None:
    async with console(stack.url) as (app, pilot):
        await until(app, pilot, lambda: connected(app))
        await pilot.press("i")
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await until(app, pilot, lambda: app.model.chat_missing)
        assert "text chat is not available on this server: press v" in app.transcript_text
        assert "(the server says: no chat key: set OPENAI_API_KEY" in app.transcript_text
        # In voice mode the same input is a turn of the voice session.
        await pilot.press("escape", "v")
        await until(app, pilot, lambda: "mode VOICE" in app.header_text)
        await pilot.press("i")
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await until_said(app, pilot, "Assistant: Hi there, I am the mock.")
        assert app.transcript_text.count("Hi there, I am the mock.") == 1  # streamed, then matched


async def test_typing_in_text_mode_is_a_chat_turn_with_the_chat_model() -> None:
    rules = [Rule(When.user("what time"), Answer.say("It is ten past nine."))]
    async with (
        ChatStandIn(rules) as llm,
        serve_stack(chat_url=llm.base_url) as stack,
        console(stack.url) as (app, pilot),
    ):
        await until(app, pilot, lambda: connected(app))
        await pilot.press("i")
        await type_text(pilot, "what time is it?")
        await pilot.press("enter")
        await until_said(app, pilot, "Assistant: It is ten past nine.")
        assert not app.model.chat_missing
        (request,) = llm.requests
        assert request["messages"][-1] == {"role": "user", "content": "what time is it?"}


async def test_help_lists_every_binding(stack: Stack) -> None:
    async with console(stack.url) as (app, pilot):
        await until(app, pilot, lambda: connected(app))
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = app.screen.text
        for _, declared in help_sections():
            for binding in as_bindings(declared):
                assert binding.description in shown, binding
                assert key_names(binding) in shown, binding
        await pilot.press("v")  # the main screen's keys are off under the overlay
        await pilot.pause()
        assert stack.app.state.sessions.mode == "text"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
