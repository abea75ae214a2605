"""What a model is given of a conversation, decided without I/O.

* `select` keeps the newest turns that fit a turn count and a token budget (tokens are
  estimated at four characters each: close enough for a budget, and it needs no tokenizer).
* `chat_messages` renders stored turns as Chat Completions messages; `voice_seed` renders
  them as the (role, text) items a voice session starts with.
* `heard_text` cuts an assistant utterance to what the user heard before a barge-in.
* `digest` is the deterministic summary of a voice session when no model writes one.

Past tool activity and summaries become short system notes: a stored tool call may have no
stored result (the process died in between), and the wire format refuses a call without its
answer, so only the running turn carries real tool messages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, Literal

from foreman.stores.conversations import Turn

SeedRole = Literal["user", "assistant", "system"]
CUT_MARK: Final = " [the user interrupted here; the rest was not heard]"
_CHANNELS: Final = {"phone": "phone call", "local_voice": "voice session", "chat": "chat"}


def estimate_tokens(text: str) -> int:
    """About four characters a token, plus a little per message."""
    return len(text) // 4 + 4


def select(turns: Sequence[Turn], *, max_turns: int, max_tokens: int) -> list[Turn]:
    """The newest turns that fit both budgets, oldest first. The newest turn is always
    kept when `max_turns` allows one (a question is never dropped for being long)."""
    picked: list[Turn] = []
    used = 0
    for turn in reversed(turns[-max_turns:] if max_turns > 0 else []):
        cost = estimate_tokens(render_text(turn))
        if picked and used + cost > max_tokens:
            break
        picked.append(turn)
        used += cost
    picked.reverse()
    return picked


def render_text(turn: Turn) -> str:
    """A turn as the model reads it (the text of its message or note)."""
    data = turn.data
    if turn.kind == "speech" and data.get("cut"):
        return f"{turn.text}{CUT_MARK}"
    if turn.kind == "tool_call":
        return f"Tool call {data.get('name', '?')} {_compact(data.get('arguments'))}"
    if turn.kind == "tool_result":
        return f"Tool result of {data.get('name', '?')}: {turn.text}"
    if turn.kind == "approval":
        state = data.get("state", "?")
        who = f" by {data['approver']}" if data.get("approver") else ""
        return f"Approval of {data.get('tool', '?')}: {state}{who}"
    if turn.kind == "summary":
        where = _CHANNELS.get(turn.channel, turn.channel)
        return f"Summary of an earlier {where}: {turn.text}"
    return turn.text


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Chat Completions messages for stored turns; consecutive notes become one message."""
    messages: list[dict[str, Any]] = []
    for turn in turns:
        role = {"user": "user", "assistant": "assistant"}.get(turn.role, "system")
        if turn.kind == "tool_call":
            role = "system"  # a note, never an unanswered call (see the module doc)
        text = render_text(turn)
        if not text.strip():
            continue
        if role == "system" and messages and messages[-1]["role"] == "system":
            messages[-1]["content"] += "\n" + text
        else:
            messages.append({"role": role, "content": text})
    return messages


def voice_seed(turns: Sequence[Turn]) -> tuple[tuple[SeedRole, str], ...]:
    """The (role, text) items a voice session is seeded with, oldest first."""
    seed: list[tuple[SeedRole, str]] = []
    for message in chat_messages(turns):
        seed.append((message["role"], message["content"]))
    return tuple(seed)


def heard_text(text: str, heard_ms: int, audio_ms: int) -> str:
    """The words of `text` heard when playback stopped `heard_ms` into `audio_ms` of
    speech: the same share of the characters, cut back to a whole word, so the record
    never claims more than was heard. Speech runs at a steady pace within one utterance,
    which is what makes the share a fair estimate; a provider with word timings would
    do better."""
    if audio_ms <= 0 or heard_ms >= audio_ms:
        return text
    end = int(len(text) * max(0, heard_ms) / audio_ms)
    if end >= len(text):
        return text
    cut = text[:end]
    if cut and cut[-1].isalnum() and text[end].isalnum():  # mid-word: not heard whole
        cut = cut[: max(cut.rfind(" "), 0)]
    return cut.rstrip(" ,;:-")


def digest(
    turns: Sequence[Turn], *, channel: str, caller: str, reason: str, limit: int = 1200
) -> str:
    """A deterministic summary of a voice session's turns (when no model writes one):
    who, how it ended, every tool call with its outcome, then what each side said (long
    utterances shortened). At most `limit` characters; the outcomes come first so that a
    long conversation never pushes what was done out of the summary."""
    where = _CHANNELS.get(channel, channel)
    head = f"A {where}" + (f" with {caller}" if caller else "") + f" (ended: {reason})."
    said: list[str] = []
    tools: dict[str, str] = {}
    names: dict[str, str] = {}
    for turn in turns:
        if turn.kind in ("spoken", "typed"):
            said.append(f'the user said "{_short(turn.text)}"')
        elif turn.kind in ("speech", "reply"):
            cut = " (interrupted)" if turn.data.get("cut") else ""
            said.append(f'the assistant said "{_short(turn.text)}"{cut}')
        elif turn.kind == "tool_call":
            call_id = str(turn.data.get("call_id", ""))
            names[call_id] = str(turn.data.get("name", "?"))
            tools[call_id] = "asked"
        elif turn.kind == "approval":
            tools[str(turn.data.get("call_id", ""))] = str(turn.data.get("state", "?"))
        elif turn.kind == "tool_result":
            call_id = str(turn.data.get("call_id", ""))
            names.setdefault(call_id, str(turn.data.get("name", "?")))
            tools[call_id] = "done" if turn.data.get("ok") else "not done"
    parts = [head]
    if tools:
        done = "; ".join(f"{names.get(c, '?')}: {state}" for c, state in tools.items())
        parts.append(f"Tools: {done}.")
    if said:
        parts.append(_capitalised("; ".join(said)) + ".")
    elif not tools:
        parts.append("Nothing was said.")
    text = " ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def json_or_text(text: str) -> Any:
    """Tool arguments as a JSON value when they parse (for records), else the raw text."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text
