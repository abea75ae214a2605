"""The console's other screens: help, no server, place a call, confirm."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static


def key_names(binding: Binding) -> str:
    """How a binding's keys read: `?`, `down / j`."""
    if binding.key_display:
        return binding.key_display
    names = {
        "question_mark": "?", "escape": "Esc", "enter": "Enter", "up": "↑", "down": "↓",
        "pageup": "PgUp", "pagedown": "PgDn", "tab": "Tab", "shift+tab": "Shift+Tab",
    }  # fmt: skip
    return " / ".join(names.get(k.strip(), k.strip()) for k in binding.key.split(","))


def as_bindings(declared: Iterable[BindingType]) -> list[Binding]:
    out = []
    for item in declared:
        if isinstance(item, Binding):
            out.append(item)
        elif isinstance(item, tuple):
            out.append(Binding(*item))
    return out


class HelpScreen(ModalScreen[None]):
    """Every binding of the console, by where it works (built from the declarations
    themselves, so it cannot fall behind them)."""

    BINDINGS = [  # noqa: RUF012 - Textual's declaration style
        Binding("escape,question_mark,q", "close", "Close this help"),
    ]

    def __init__(self, sections: Sequence[tuple[str, Iterable[BindingType]]]) -> None:
        super().__init__(id="help")
        self._sections = [(title, as_bindings(b)) for title, b in sections]
        self.text = ""  # what it lists, as plain text

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for title, bindings in [*self._sections, ("This help", as_bindings(self.BINDINGS))]:
            table.add_row(Text(title, style="bold underline"), "")
            for binding in bindings:
                table.add_row(key_names(binding), binding.description)
            table.add_row("", "")
        self.text = "\n".join(
            f"{key_names(b)}  {b.description}" for _, bs in self._sections for b in bs
        )
        with VerticalScroll(id="help-box"):
            yield Static(Text("Foreman console: keys", style="bold"), id="help-title")
            yield Static(table, id="help-table")

    def action_close(self) -> None:
        self.dismiss()


class OfflineScreen(Screen[None]):
    """Shown while no server answers: what was tried, why it failed, that it retries."""

    BINDINGS = [  # noqa: RUF012 - Textual's declaration style
        Binding("r", "retry", "Retry now"),
        Binding("q", "quit", "Quit"),
    ]

    class RetryNow(Message):
        """The owner asked to try the server again at once."""

    def __init__(self, url: str) -> None:
        super().__init__(id="offline")
        self._url = url
        self._error = ""
        self._attempts = 0
        self.text = ""  # what it shows, as plain text
        self.closing = False  # the server is back while another screen was on top
        self._text = Static(id="offline-text")

    def compose(self) -> ComposeResult:
        with Vertical(id="offline-box"):
            yield self._text

    def on_mount(self) -> None:
        self._draw()

    def failed(self, error: str, attempts: int) -> None:
        self._error, self._attempts = error, attempts
        if self.is_mounted:
            self._draw()

    def _draw(self) -> None:
        text = Text()
        text.append("No Foreman server answers\n\n", style="bold red")
        text.append(self._url + "\n\n", style="bold")
        if self._error:
            text.append(self._error + "\n\n")
        tries = f" ({self._attempts} attempts so far)" if self._attempts > 1 else ""
        text.append(f"Retrying by itself{tries}. ", style="dim")
        text.append("r", style="bold")
        text.append(" retries now, ", style="dim")
        text.append("q", style="bold")
        text.append(" quits.", style="dim")
        self.text = text.plain
        self._text.update(text)

    def on_screen_resume(self) -> None:
        if self.closing:
            self.dismiss()

    def action_retry(self) -> None:
        self.post_message(self.RetryNow())

    def action_quit(self) -> None:
        self.app.exit()


class PlaceCallScreen(ModalScreen[tuple[str, str] | None]):
    """Asks for a number and a purpose; dismissed with both, or None."""

    BINDINGS = [  # noqa: RUF012 - Textual's declaration style
        Binding("escape", "cancel", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Static(Text("Place a call", style="bold"))
            yield Input(placeholder="number, E.164 (+14155550123)", id="call-to")
            yield Input(placeholder="purpose (optional): what the call is for", id="call-purpose")
            yield Static("Enter: next field, then call · Esc: cancel", classes="dialog-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        to = self.query_one("#call-to", Input).value.strip()
        if event.input.id == "call-to" or not to:
            self.query_one("#call-purpose" if to else "#call-to", Input).focus()
            return
        self.dismiss((to, self.query_one("#call-purpose", Input).value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes-or-no question; dismissed with the answer."""

    BINDINGS = [  # noqa: RUF012 - Textual's declaration style
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self._question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Static(Text(self._question, style="bold"))
            yield Static("y: yes · n / Esc: no", classes="dialog-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
