"""`ForemanApp`: the owner's console over a running `foreman serve`.

Two workers keep it current, both running the `ServerLink` (link.py). One follows the event
stream; once the server has subscribed it, the state is read (status, calls, approvals,
wake), so nothing that happens from then on is missed. When the stream breaks, the
no-server screen comes up and the link retries; when it is back, the state is read again
(what was said meanwhile is gone: the transcript says so). The other reads the parts of the
state the model asks for (after a lost event, a call starting, the mode changing).

Everything the owner does goes through `ForemanClient`. What a server does not offer (text
chat without a chat model, the wake sentinel without the desk audio) the console shows as
"not available on this server", with the server's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Footer

from foreman.client import (
    ApiError,
    ChatDelta,
    ChatDone,
    ChatNote,
    ChatPiece,
    ChatToolStarted,
    ClientError,
    Delta,
    Done,
    ForemanClient,
    SayPiece,
    ToolNotice,
)
from foreman.client_types import describe_detail
from foreman.clock import Clock, SystemClock
from foreman.tui import render
from foreman.tui.approval import ApprovalScreen
from foreman.tui.link import RETRY_DELAYS, ServerLink
from foreman.tui.model import OWNER, ConsoleState, Refresh
from foreman.tui.screens import ConfirmScreen, HelpScreen, OfflineScreen, PlaceCallScreen
from foreman.tui.widgets import ChatInput, LogPane, SessionList, StatusHeader, TranscriptView

# What the owner does on the main screen: off while a prompt or a dialog is on top.
MAIN_ONLY = frozenset(
    {
        "toggle_voice", "toggle_wake", "place_call", "hang_up", "focus_chat", "leave_chat",
        "toggle_log", "show_approvals", "next_conversation", "previous_conversation", "quit",
    }
)  # fmt: skip


class ForemanApp(App[None]):
    """The console. It owns `client` and closes it when it exits."""

    CSS_PATH = "app.tcss"
    TITLE = "Foreman"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("i", "focus_chat", "Type"),
        Binding("v", "toggle_voice", "Voice on/off"),
        Binding("w", "toggle_wake", "Wake on/off"),
        Binding("c", "place_call", "Call"),
        Binding("h", "hang_up", "Hang up"),
        Binding("a", "show_approvals", "Approvals"),
        Binding("l", "toggle_log", "Log"),
        Binding("right_square_bracket", "next_conversation", "Next conversation", key_display="]"),
        Binding(
            "left_square_bracket", "previous_conversation", "Previous conversation", key_display="["
        ),
        Binding("escape", "leave_chat", "Leave the input", show=False),
        Binding("q", "quit", "Quit"),
    ]

    show_log: reactive[bool] = reactive(False, init=False)
    selected: reactive[str] = reactive(OWNER, init=False)  # the conversation on show

    def __init__(
        self,
        client: ForemanClient,
        *,
        clock: Clock | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        super().__init__()
        self.client = client
        self.model = ConsoleState()
        self._clock = clock or SystemClock()
        self.link = ServerLink(
            client, self.model, self._clock, self.post_message, retry_delays=retry_delays
        )
        self._change = asyncio.Event()
        self._approvals: ApprovalScreen | None = None
        self._put_away: set[str] = set()
        self._offline: OfflineScreen | None = None
        # The main screen's widgets, held: a query would search whatever screen is on top.
        self._header = StatusHeader(id="header")
        self._sessions = SessionList(id="sessions")
        self._transcript = TranscriptView(id="transcript")
        self._log_pane = LogPane(id="log")
        self._chat = ChatInput(id="chat")

    # --- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield self._header
        with Horizontal(id="body"):
            yield self._sessions
            yield self._transcript
        yield self._log_pane
        yield self._chat
        yield Footer()

    def on_mount(self) -> None:
        self._sessions.focus()
        self._draw()
        self.set_interval(1.0, self._draw_header)
        self.follow_server()
        self.refresh_state()

    async def on_unmount(self) -> None:
        await self.client.aclose()

    # --- for scripts and tests ----------------------------------------------------------------
    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds; it is checked after every change of state."""
        while not predicate():
            change = self._change
            await change.wait()

    @property
    def transcript_text(self) -> str:
        return self._transcript.text

    @property
    def header_text(self) -> str:
        return self._header.text.plain

    @property
    def log_lines(self) -> list[str]:
        return self._log_pane.written

    def add_log_line(self, line: str) -> None:
        """A line for the log pane (the `foreman tui` command routes logging here)."""
        if self.is_running:
            self._write_log(line)

    # --- the link to the server -------------------------------------------------------------
    @work(group="link", exclusive=True)
    async def follow_server(self) -> None:
        await self.link.follow()

    @work(group="refresh", exclusive=True)
    async def refresh_state(self) -> None:
        await self.link.refresh(self._state_read)

    def _state_read(self, error: str | None) -> None:
        if error:
            self._write_log(error)
        self._draw()

    def want(self, parts: Refresh) -> None:
        """Read these parts of the server's state again (soon, once)."""
        self.link.want(parts)

    def on_server_link_opened(self, _: ServerLink.Opened) -> None:
        reconnected = self.model.error is not None
        self.model.opened()
        self._write_log("connected to " + self.client.base_url)
        if reconnected:
            for conv in self.model.conversations.values():
                if conv.live or conv.key == OWNER:
                    conv.transcript.note("reconnected")
        offline, self._offline = self._offline, None
        if offline is not None and offline is self.screen:
            offline.dismiss()
        elif offline is not None:
            offline.closing = True
        self.want(Refresh.ALL)
        self._draw()

    def on_server_link_lost(self, message: ServerLink.Lost) -> None:
        self.model.lost(message.error)
        self._write_log(f"no server: {message.error}")
        if self._offline is None:
            self._offline = OfflineScreen(self.client.base_url)
            self.push_screen(self._offline)
        self._offline.failed(message.error, self.link.attempts)
        self._draw()

    def on_offline_screen_retry_now(self, _: OfflineScreen.RetryNow) -> None:
        self.link.retry_now()

    def on_server_link_received(self, message: ServerLink.Received) -> None:
        event = message.event
        self._write_log(render.event_line(event))
        if event.kind == "events.dropped":
            lost = event.data.get("count", "some")
            self._write_log(f"missed {lost} events: reading the state again")
        self.want(self.model.apply(event, self._clock.monotonic()))
        self._draw()

    # --- drawing ------------------------------------------------------------------------------
    def _draw(self) -> None:
        model = self.model
        if self.selected not in model.conversations:
            self.selected = OWNER
        self._draw_header()
        self._sessions.show(list(model.conversations.values()), self.selected)
        self._transcript.show(model.conversations[self.selected])
        self._chat.placeholder = self._chat_hint()
        self._sync_approvals()
        self._change.set()
        self._change = asyncio.Event()

    def _draw_header(self) -> None:
        self._header.show(self.model, self.client.base_url, self._clock.wall())

    def _chat_hint(self) -> str:
        status = self.model.status
        if status is not None and status.active:
            return "i: type a turn for the voice session · Enter sends · Esc leaves"
        if self.model.chat_missing:
            return "text chat is not available on this server: press v to start voice"
        return "i: type a chat message · Enter sends · Esc leaves"

    def watch_selected(self, key: str) -> None:
        if key in self.model.conversations:
            self._draw()

    def watch_show_log(self, shown: bool) -> None:
        self._log_pane.display = shown

    def on_session_list_picked(self, message: SessionList.Picked) -> None:
        self.selected = message.key

    def _write_log(self, line: str) -> None:
        self._log_pane.add(line)

    def _tell(self, text: str, *, error: bool = False) -> None:
        """A notice for the owner: a toast, and a line in the log."""
        self._write_log(("error: " if error else "") + text)
        self.notify(text, severity="error" if error else "information")

    # --- approvals --------------------------------------------------------------------------
    def _sync_approvals(self) -> None:
        pending = list(self.model.approvals.values())
        self._put_away &= {a.prompt.id for a in pending}
        shown = [a for a in pending if a.prompt.id not in self._put_away]
        screen = self._approvals
        if screen is not None:
            screen.show_queue(shown)
            if not shown and screen is self.screen:
                screen.dismiss([])
            return
        if shown and self._offline is None:
            self._approvals = ApprovalScreen(self._clock)
            self._approvals.show_queue(shown)
            self.push_screen(self._approvals, self._approvals_closed)

    def _approvals_closed(self, put_away: list[str] | None) -> None:
        self._approvals = None
        self._put_away |= set(put_away or ())

    def on_approval_screen_answered(self, message: ApprovalScreen.Answered) -> None:
        self.answer_approval(message.approval_id, message.approve, message.note)

    @work(group="answers")
    async def answer_approval(self, approval_id: str, approve: bool, note: str | None) -> None:
        pending = self.model.approvals.get(approval_id)
        try:
            answered = await self.client.answer_approval(approval_id, approve, note)
        except ApiError as exc:
            if exc.status not in (404, 409) or pending is None:
                self._tell(f"the answer did not go through: {exc}", error=True)
                if self._approvals is not None:
                    self._approvals.show_queue(list(self.model.approvals.values()))
                return
            self._tell(f"{pending.prompt.tool}: no longer waiting ({exc})")
            answered = pending.prompt
        except ClientError as exc:
            self._tell(f"the answer did not go through: {exc}", error=True)
            return
        verdict = "approved" if approve else "denied"
        self._write_log(f"{answered.tool}: {verdict}" + (f" (note: {note})" if note else ""))
        self.model.answered(answered)
        self._draw()

    # --- actions --------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        on_top = self.screen is not self.screen_stack[0]  # a prompt, a dialog, no server
        return not (on_top and action in MAIN_ONLY)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_sections()))

    def action_focus_chat(self) -> None:
        self.selected = OWNER
        self._chat.focus()

    def action_leave_chat(self) -> None:
        self._sessions.focus()

    def action_toggle_log(self) -> None:
        self.show_log = not self.show_log

    def action_next_conversation(self) -> None:
        self._step(1)

    def action_previous_conversation(self) -> None:
        self._step(-1)

    def _step(self, by: int) -> None:
        keys = list(self.model.conversations)
        self.selected = keys[(keys.index(self.selected) + by) % len(keys)]

    def action_show_approvals(self) -> None:
        self._put_away.clear()
        if not self.model.approvals:
            self._tell("no approvals are waiting")
        self._draw()

    def action_toggle_voice(self) -> None:
        status = self.model.status
        self.switch_voice(not (status is not None and status.active))

    @work(group="voice", exclusive=True)
    async def switch_voice(self, on: bool) -> None:
        try:
            if on:
                status = await self.client.start_realtime()
            else:
                status = await self.client.stop_realtime()
        except ClientError as exc:
            self._tell(f"voice {'start' if on else 'stop'} failed: {exc}", error=True)
            self.want(Refresh.STATUS)
            return
        self.model.set_status(status)
        self._write_log(render.status_brief(status))
        self._draw()

    def action_toggle_wake(self) -> None:
        wake = self.model.wake
        self.switch_wake(not (wake is not None and wake.enabled))

    @work(group="wake", exclusive=True)
    async def switch_wake(self, on: bool) -> None:
        try:
            wake = await (self.client.enable_wake() if on else self.client.disable_wake())
        except ApiError as exc:
            if exc.status != 404:
                self._tell(f"wake: {exc}", error=True)
                return
            self.model.set_wake(None)
            self._tell("wake is not available on this server", error=True)
        except ClientError as exc:
            self._tell(f"wake: {exc}", error=True)
            return
        else:
            self.model.set_wake(wake)
            self._write_log(f"wake {'on' if wake.enabled else 'off'}")
        self._draw()

    def action_place_call(self) -> None:
        def placed(answer: tuple[str, str] | None) -> None:
            if answer is not None:
                self.place_call(*answer)

        self.push_screen(PlaceCallScreen(), placed)

    @work(group="calls")
    async def place_call(self, to: str, purpose: str) -> None:
        try:
            placed = await self.client.place_call(to, purpose or None)
        except ClientError as exc:
            self._tell(f"the call was not placed: {exc}", error=True)
            return
        self._tell(f"calling {placed.to} ({placed.call_sid})")

    def action_hang_up(self) -> None:
        conv = self.model.conversations[self.selected]
        if conv.channel != "phone" or not conv.live or not conv.call_sid:
            self._tell("pick a live call first (the list on the left)", error=True)
            return
        sid, who = conv.call_sid, f"{conv.title} {conv.caller}".strip()

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.hang_up(sid)

        self.push_screen(ConfirmScreen(f"Hang up the call with {who}?"), confirmed)

    @work(group="calls")
    async def hang_up(self, call_sid: str) -> None:
        try:
            await self.client.hang_up_call(call_sid)
        except ApiError as exc:
            gone = exc.status == 404
            self._tell("that call has already ended" if gone else f"hang-up: {exc}", error=True)
            return
        except ClientError as exc:
            self._tell(f"hang-up: {exc}", error=True)
            return
        self._tell("hanging up")

    # --- typing -------------------------------------------------------------------------------
    def on_chat_input_sent(self, message: ChatInput.Sent) -> None:
        self.selected = OWNER
        status = self.model.status
        self.send_turn(message.text, voice=status is not None and status.active)

    @work(group="turns")
    async def send_turn(self, text: str, *, voice: bool) -> None:
        transcript = self.model.owner.transcript
        transcript.typed(text)
        self._draw()
        stream = self.client.say(text) if voice else self.client.chat_stream(text)
        try:
            async for piece in stream:
                self._take_piece(piece)
        except ApiError as exc:
            # 400: the server has no chat model set up; 404: a server without text chat.
            if exc.status in (400, 404) and not voice:
                self.model.chat_missing = True
                transcript.note(
                    "text chat is not available on this server: press v to start voice, then "
                    f"type to the voice session (the server says: {describe_detail(exc.detail)})"
                )
            else:
                transcript.note(f"not sent: {exc}")
        except ClientError as exc:
            transcript.note(f"the reply broke off: {exc}")
        finally:
            closing = getattr(stream, "aclose", None)  # ends the request if still open
            if closing is not None:
                await closing()
            transcript.close_reply()
            self._draw()

    def _take_piece(self, piece: SayPiece | ChatPiece) -> None:
        transcript = self.model.owner.transcript
        if isinstance(piece, Delta | ChatDelta):
            transcript.delta(piece.text)
        elif isinstance(piece, ToolNotice | ChatToolStarted):
            transcript.tool(piece.call_id, piece.name)
        elif isinstance(piece, ChatNote):
            transcript.note(piece.text)
        elif isinstance(piece, Done | ChatDone):
            transcript.close_reply()
            if piece.error:
                transcript.note(f"the turn ended: {piece.error}")
        self._draw()


def help_sections() -> list[tuple[str, Sequence[BindingType]]]:
    """Every binding of the console, by where it works, from the declarations themselves.
    Keys that a Textual widget handles (Enter in an input, scrolling) are listed beside."""
    scroll = Binding("up,down,pageup,pagedown", "", "Scroll the arguments")
    next_field = Binding("enter", "", "Next field, then call")
    return [
        ("Main screen", ForemanApp.BINDINGS),
        ("Conversations (left)", SessionList.BINDINGS),
        ("Typing (after i)", [Binding("enter", "", "Send"), Binding("escape", "", "Stop typing")]),
        ("Approval prompt", [*ApprovalScreen.BINDINGS, scroll]),
        ("No server", OfflineScreen.BINDINGS),
        ("Place a call", [next_field, *PlaceCallScreen.BINDINGS]),
        ("Questions", ConfirmScreen.BINDINGS),
        (
            "Anywhere",
            [
                Binding("tab,shift+tab", "", "Move the focus"),
                Binding("ctrl+p", "", "Command palette"),
                Binding("ctrl+q", "", "Quit"),
            ],
        ),
    ]
