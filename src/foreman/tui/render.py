"""How the console's state reads on screen: Rich text built from the model. Pure: the time
(`now`, unix seconds; `left`, seconds) is passed in, nothing is read from the clock."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from typing import Any

from rich.text import Text

from foreman.client_types import ApprovalPrompt, Event, LiveCall, RealtimeStatus, one_line
from foreman.tui.model import OWNER, ConsoleState, Conversation, Line


def duration(seconds: float) -> str:
    """`42s`, `3m 07s`, `2h 05m`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def countdown(seconds: float) -> str:
    """`1:54` (rounded up: a prompt with half a second left still shows 0:01)."""
    s = max(0, int(-(-seconds // 1)))
    return f"{s // 60}:{s % 60:02d}"


def since(iso: str | None) -> str:
    """The server's ISO 8601 UTC time as `12:03:04 UTC` (the date is dropped)."""
    if not iso:
        return "—"
    clock = iso.partition("T")[2].rstrip("Z").split(".")[0]
    return f"{clock} UTC" if clock else iso


# --- header -----------------------------------------------------------------------------------
def connection_line(console: ConsoleState, url: str) -> Text:
    text = Text()
    text.append(" FOREMAN ", style="bold reverse")
    if console.connected:
        text.append("  ● ", style="green")
        text.append("connected ", style="green")
    else:
        text.append("  ○ ", style="red")
        text.append("no server ", style="red")
    text.append(url, style="dim")
    mode = console.status.mode if console.status is not None else "?"
    text.append("   mode ")
    text.append(mode.upper(), style="bold magenta" if mode == "voice" else "bold cyan")
    text.append("   wake ")
    text.append_text(wake_text(console))
    return text


def wake_text(console: ConsoleState) -> Text:
    if console.wake_missing:
        return Text("not available on this server", style="dim")
    wake = console.wake
    if wake is None:
        return Text("?", style="dim")
    if not wake.enabled:
        return Text("off", style="yellow")
    text = Text.assemble(("on", "bold green"))
    details = [d for d in ("listening" if wake.listening else "paused", wake.detector) if d]
    last = wake.last_trigger
    if isinstance(last, dict) and last.get("text"):
        details.append(f"last heard “{one_line(str(last['text']), 40)}”")
    if wake.last_error:
        details.append(one_line(wake.last_error, 60))
    text.append(f" ({', '.join(details)})", style="dim")
    return text


def realtime_line(console: ConsoleState) -> Text:
    status = console.status
    text = Text.assemble(("realtime ", "bold"))
    if status is None:
        return text.append("status not read yet", style="dim")
    parts: list[str] = []
    if console.backend:
        parts.append(console.backend)
    if status.transport or status.endpoint_host:
        parts.append(f"{status.transport or '?'} → {status.endpoint_host or '?'}")
    parts.append(f"model {status.model or '—'}")
    if status.active:
        parts.append(f"since {since(status.since)}")
        text.append("active ", style="green")
    else:
        text.append("idle ", style="dim")
    text.append(" · ".join(parts))
    text.append(" · last error ")
    if status.last_error:
        text.append(one_line(status.last_error, 160), style="red")
    else:
        text.append("none", style="dim")
    return text


def calls_line(calls: Iterable[LiveCall], now: float) -> Text:
    text = Text.assemble(("calls ", "bold"))
    listed = list(calls)
    if not listed:
        return text.append("none", style="dim")
    for i, call in enumerate(listed):
        if i:
            text.append(" · ")
        number = call.to if call.direction == "outbound" else call.from_
        text.append(call.caller_name or number or call.call_sid, style="bold")
        if call.caller_name and number:
            text.append(f" {number}")
        arrow = "out" if call.direction == "outbound" else "in"
        text.append(f" ({arrow}, {duration(now - call.started_at)})", style="dim")
    return text


def approvals_line(count: int) -> Text:
    if not count:
        return Text("")
    plural = "s" if count > 1 else ""
    notice = f" ⚠ {count} approval{plural} waiting: press a to answer "
    return Text(notice, style="bold reverse red")


# --- sessions and transcripts -----------------------------------------------------------------
def conversation_label(conv: Conversation) -> Text:
    if conv.key == OWNER:
        text = Text.assemble(("Desk", "bold"))
        text.append(" (voice)" if conv.live else " (text)", style="dim")
        return text
    text = Text.assemble(("● " if conv.live else "  ", "green"))
    arrow = "→ " if conv.direction == "outbound" else "← "
    text.append(arrow + conv.title, style="bold" if conv.live else "dim")
    if conv.caller_name and conv.caller:
        text.append(f" {conv.caller}", style="dim")
    if not conv.live:
        text.append(" ended", style="dim italic")
    return text


def transcript_text(conv: Conversation) -> Text:
    """The whole transcript (complete: nothing cut; the view scrolls)."""
    user = "You" if conv.key == OWNER else "Caller"
    text = Text()
    for line in conv.transcript.lines:
        text.append_text(_line(line, user))
        text.append("\n")
    if not conv.transcript.lines:
        hint = "Nothing said yet." + (" Press i to type." if conv.key == OWNER else "")
        text.append(hint, style="dim italic")
    return text


def _line(line: Line, user: str) -> Text:
    if line.role == "user":
        return Text.assemble((f"{user}: ", "bold cyan"), line.text)
    if line.role == "assistant":
        text = Text.assemble(("Assistant: ", "bold magenta"), line.text)
        if line.streaming:
            text.append(" ▌", style="blink")
        if line.cut_ms is not None:
            text.append(f"  ✂ cut off at {line.cut_ms / 1000:.1f} s (barge-in)", style="bold red")
        return text
    if line.role == "tool":
        text = Text.assemble(("  ⚙ ", "yellow"), (line.text, "bold yellow"))
        if line.status:
            bad = line.status.startswith(("den", "expired", "cancelled", "failed", "invalid"))
            text.append(f" — {line.status}", style="red" if bad else "yellow")
        return text
    return Text(f"  — {line.text}", style="dim italic")


# --- approvals ----------------------------------------------------------------------------------
def visible(text: str) -> Text:
    """`text` with every character that would not show (control and format characters:
    escapes, bidi overrides, zero-width marks) spelled out, so a prompt shows exactly what
    would run. Newlines stay."""
    out = Text()
    for char in text:
        if char != "\n" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\u{ord(char):04x}", style="bold red reverse")
        else:
            out.append(char)
    return out


def arguments_text(arguments: Any) -> Text:
    """The tool's arguments, complete and readable: one field a line, text values as they
    would be sent (a long or multi-line value as an indented block), other values as JSON.
    Nothing is cut: the prompt scrolls."""
    if not isinstance(arguments, dict) or not arguments:
        return visible(_json(arguments))
    width = min(max(len(str(k)) for k in arguments), 20)
    out = Text()
    for i, (key, value) in enumerate(arguments.items()):
        if i:
            out.append("\n")
        body = value if isinstance(value, str) else _json(value)
        block = "\n" in body or len(body) > 60
        key_text = visible(str(key) if block else str(key).ljust(width))
        key_text.stylize("bold cyan")
        out.append_text(key_text)
        if block:
            for line in body.split("\n"):
                out.append("\n  │ ", style="dim")
                out.append_text(visible(line))
        else:
            out.append("  ")
            out.append_text(visible(body))
    return out


def _json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def approval_heading(prompt: ApprovalPrompt, position: int, total: int) -> Text:
    text = Text.assemble((f"Approve {prompt.tool}?", "bold"))
    if total > 1:
        text.append(f"   ({position} of {total} waiting)", style="dim")
    return text


def approval_who(prompt: ApprovalPrompt) -> Text:
    text = Text.assemble(("asked by ", "dim"))
    text.append(prompt.caller or "?", style="bold")
    if prompt.caller_id and prompt.caller_id != prompt.caller:
        text.append(f" {prompt.caller_id}")
    if prompt.role:
        text.append(f" ({prompt.role})", style="dim")
    text.append(" on ", style="dim")
    text.append(prompt.channel or "?", style="bold")
    if prompt.risk:
        text.append("   risk ", style="dim")
        text.append(prompt.risk, style="bold red" if prompt.risk == "high" else "bold")
    return text


def approval_countdown(left: float) -> Text:
    if left <= 0:
        return Text("timed out: the tool will not run", style="bold red")
    return Text.assemble(
        ("answer within ", "dim"), (countdown(left), "bold red" if left < 30 else "bold")
    )


# --- the log ------------------------------------------------------------------------------------
def event_line(event: Event) -> str:
    data = json.dumps(dict(event.data), ensure_ascii=False, default=str)
    seq = f"#{event.seq}" if event.seq else "  -"
    return f"{seq:>6} {event.kind} {one_line(data, 200)}"


def status_brief(status: RealtimeStatus) -> str:
    return f"voice {'on' if status.active else 'off'}, mode {status.mode}"
