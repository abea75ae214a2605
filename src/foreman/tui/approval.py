"""The approval prompt: pops up over everything while a tool call waits for the owner.

It shows the oldest waiting prompt (the others queue behind it): the tool, its arguments
complete (they scroll, they are never cut), who asked and on which channel, and a countdown
to the timeout. `y` approves, `n` denies, `e` adds a note for the model first; Escape puts
the prompt away until `a` brings it back (a new prompt brings it back by itself).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from foreman.clock import Clock
from foreman.tui import render
from foreman.tui.model import PendingApproval


class ApprovalScreen(ModalScreen[list[str]]):
    """Dismissed with the ids the owner put away for later (none when the queue emptied)."""

    BINDINGS = [  # noqa: RUF012 - Textual's declaration style
        Binding("y", "answer(True)", "Approve"),
        Binding("n", "answer(False)", "Deny"),
        Binding("e", "write_note", "Note for the model"),
        Binding("escape", "later", "Answer later"),
    ]

    class Answered(Message):
        """The owner answered the prompt `approval_id`."""

        def __init__(self, approval_id: str, approve: bool, note: str | None) -> None:
            super().__init__()
            self.approval_id = approval_id
            self.approve = approve
            self.note = note

    def __init__(self, clock: Clock) -> None:
        super().__init__(id="approval")
        self._clock = clock
        self._queue: list[PendingApproval] = []
        self._shown_id: str | None = None
        self._answering: str | None = None
        self._heading = self._who = self._countdown = Text()
        # Held, not queried: the app may update the prompt while screens come and go.
        self._heading_view = Static(id="approval-heading")
        self._who_view = Static(id="approval-who")
        self._countdown_view = Static(id="approval-countdown")
        self._args = VerticalScroll(id="approval-args")
        self._args_body = Static(id="approval-args-body")
        self._note = Input(placeholder="e: a note for the model (optional)", id="approval-note")

    def compose(self) -> ComposeResult:
        with Vertical(id="approval-box"):
            yield self._heading_view
            yield self._who_view
            yield self._countdown_view
            with self._args:
                yield self._args_body
            yield self._note
            yield Static(
                "y approve · n deny · e note · ↑ ↓ PgUp PgDn scroll · Esc later",
                id="approval-keys",
            )

    def on_screen_resume(self) -> None:
        if not self._queue:  # emptied while another screen was on top
            self.dismiss([])

    @property
    def shown(self) -> PendingApproval | None:
        return self._queue[0] if self._queue else None

    def show_queue(self, queue: list[PendingApproval]) -> None:
        """Show the oldest of `queue` (the app calls this whenever the queue changes)."""
        self._queue = queue
        if self.is_mounted:
            self._draw()

    def _draw(self) -> None:
        head = self.shown
        if head is None:
            return
        prompt = head.prompt
        if prompt.id != self._shown_id:
            self._shown_id, self._answering = prompt.id, None
            self._note.value = ""
            self._args_body.update(render.arguments_text(prompt.arguments))
            self._args.scroll_home(animate=False)
            self._args.focus()
            self.call_after_refresh(self._hint_more)
        self._heading = render.approval_heading(prompt, 1, len(self._queue))
        self._heading_view.update(self._heading)
        self._who = render.approval_who(prompt)
        self._who_view.update(self._who)
        self._tick()

    def _tick(self) -> None:
        head = self.shown
        if head is not None:
            left = head.remaining(self._clock.monotonic())
            self._countdown = render.approval_countdown(left)
            self._countdown_view.update(self._countdown)
        self._hint_more()

    def _hint_more(self) -> None:
        """Say on the frame when the arguments go on below or above what shows."""
        args = self._args
        below, above = args.scroll_y < args.max_scroll_y, args.scroll_y > 0
        hint = {
            (True, False): "more below ↓",
            (True, True): "more ↑ ↓",
            (False, True): "↑ more above",
        }
        args.border_subtitle = hint.get((below, above), "")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        self._draw()
        self.call_after_refresh(self._hint_more)
        self.watch(self._args, "scroll_y", lambda _: self._hint_more(), init=False)

    @property
    def text(self) -> str:
        """What the prompt shows, as plain text (for scripts and tests)."""
        head = self.shown
        arguments = render.arguments_text(head.prompt.arguments).plain if head else ""
        return "\n".join((self._heading.plain, self._who.plain, self._countdown.plain, arguments))

    @property
    def note(self) -> str:
        return self._note.value.strip()

    def action_answer(self, approve: bool) -> None:
        head = self.shown
        if head is None or self._answering == head.prompt.id:
            return  # already sent: the queue moves on once the server has it
        self._answering = head.prompt.id
        self.post_message(self.Answered(head.prompt.id, approve, self.note or None))

    def action_write_note(self) -> None:
        self._note.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._args.focus()  # y / n answer again

    def action_later(self) -> None:
        if self._note.has_focus:
            self._args.focus()
            return
        self.dismiss([a.prompt.id for a in self._queue])


_MORE = {(True, False): "more below ↓", (True, True): "more ↑ ↓", (False, True): "↑ more above"}
