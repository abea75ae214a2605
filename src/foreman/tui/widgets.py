"""The main screen's widgets. Each draws from the console model it is handed and tells the
app what the owner did through its own `Message`."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Input, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from foreman.tui import render
from foreman.tui.model import ConsoleState, Conversation


class StatusHeader(Static):
    """Connection, mode, wake, the realtime session, live calls and waiting approvals."""

    text = Text()  # what it shows

    def show(self, console: ConsoleState, url: str, now: float) -> None:
        lines = [
            render.connection_line(console, url),
            render.realtime_line(console),
            render.calls_line(console.calls, now),
        ]
        if console.approvals:
            lines.append(render.approvals_line(len(console.approvals)))
        self.text = Text("\n").join(lines)
        self.update(self.text)


class SessionList(OptionList):
    """The conversations: the owner's desk first, then phone calls (live ones marked)."""

    BINDINGS = [  # noqa: RUF012 - Textual's declaration style
        Binding("down,j", "cursor_down", "Next conversation", show=False),
        Binding("up,k", "cursor_up", "Previous conversation", show=False),
    ]

    class Picked(Message):
        """The owner moved to another conversation."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: list[tuple[str, str]] = []

    def show(self, conversations: list[Conversation], selected: str) -> None:
        """Redraw when what the list shows changed; keep `selected` highlighted."""
        wanted = [(c.key, render.conversation_label(c).markup) for c in conversations]
        if wanted != self._shown:
            self._shown = wanted
            with self.prevent(OptionList.OptionHighlighted):
                self.clear_options()
                self.add_options(
                    Option(render.conversation_label(c), id=c.key) for c in conversations
                )
        keys = [key for key, _ in wanted]
        if selected in keys and self.highlighted != keys.index(selected):
            with self.prevent(OptionList.OptionHighlighted):
                self.highlighted = keys.index(selected)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Picked(event.option.id))


class TranscriptView(VerticalScroll):
    """One conversation's transcript, complete; it follows new lines while at the bottom."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._body = Static(id="transcript-body")
        self._drawn: tuple[str, int] | None = None
        self._text = Text()

    def compose(self) -> ComposeResult:
        yield self._body

    def show(self, conv: Conversation) -> None:
        self.border_title = render.conversation_label(conv).plain  # live or not: may change
        drawn = (conv.key, conv.transcript.version)
        if drawn == self._drawn:
            return
        following = self._drawn is None or self._drawn[0] != conv.key or self.is_vertical_scroll_end
        self._drawn = drawn
        self._text = render.transcript_text(conv)
        self._body.update(self._text)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    @property
    def text(self) -> str:
        """What the pane shows, as plain text (for scripts and tests)."""
        return self._text.plain


class LogPane(RichLog):
    """Every event and every error, newest last."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=2000, wrap=True, markup=False)
        self.written: list[str] = []  # the same lines as text (RichLog keeps only strips)

    def add(self, line: str) -> None:
        self.written = [*self.written[-1999:], line]
        self.write(line)


class ChatInput(Input):
    """What the owner types: a chat message in text mode, a turn of the voice session in
    voice mode."""

    class Sent(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, placeholder="Press i to type to the assistant")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if text:
            self.post_message(self.Sent(text))
        self.value = ""
