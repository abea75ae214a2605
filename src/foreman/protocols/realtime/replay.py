"""`ConversationLedger`: the conversation as the user heard it, kept across connections, and
the items that restore it on a new Realtime session.

A new connection is a new session: nothing survives on the service's side, and assistant
audio cannot be created, so context is replayed as text items with `conversation.item.create`
(the GA item shapes: user and system `input_text`, assistant `output_text`, `function_call`,
`function_call_output`; https://platform.openai.com/docs/api-reference/realtime-client-events/conversation/item/create).

What is kept, in the order it happened:

* user turns: a committed audio turn takes its place when it is committed, its words when
  the transcription completes (a turn never transcribed is not replayed: nothing is known of
  it); typed turns at once;
* assistant turns: the transcript, cut to what was heard after a barge-in (the same share of
  the characters as of the audio, back to a whole word); a reply a drop cut short keeps the
  words that arrived;
* notes (system text) and seeded history;
* tool calls and their one output each. A call still waiting for its output is replayed
  without one, and its output goes to the new session when it comes: exactly one per call.

Pure: the backend feeds it from the events it already handles (never per audio frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from foreman.protocols.realtime import items

__all__ = ["ConversationLedger"]

Kind = Literal["user", "assistant", "system", "call", "output"]
_MEMORY_FACTOR: Final = 2  # entries kept beyond `max_items` (untranscribed turns, orphans)


@dataclass(slots=True)
class _Entry:
    seq: int
    kind: Kind
    text: str = ""  # message text; a call's arguments; an output
    name: str = ""  # a call's tool name
    call_id: str = ""
    final: bool = True  # assistant: its transcript is whole; user audio: transcribed


class ConversationLedger:
    """Feed it what happens; `replay()` gives the items for a fresh session, oldest first."""

    def __init__(self, max_items: int = 200) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self._entries: dict[str, _Entry] = {}  # key (item id, or a made-up one) -> entry
        self._seq = 0
        self._outputs: set[str] = set()  # call ids that have their one output
        self._calls: dict[str, str] = {}  # call id -> key of its call entry

    # --- feeding ----------------------------------------------------------------------------
    def _add(self, key: str, entry_kind: Kind, **fields: Any) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            self._seq += 1
            entry = self._entries[key] = _Entry(self._seq, entry_kind, **fields)
            self._forget_oldest()
        return entry

    def _forget_oldest(self) -> None:
        limit = self.max_items * _MEMORY_FACTOR
        while len(self._entries) > limit:
            key = next(iter(self._entries))
            gone = self._entries.pop(key)
            if gone.kind == "call":
                self._calls.pop(gone.call_id, None)

    def text(self, role: Literal["user", "assistant", "system"], text: str) -> None:
        """A typed user turn, a note, or a seeded history line."""
        if text:
            self._seq += 1  # a key of its own: the same words twice are two turns
            self._add(f"text:{self._seq}", role, text=text)

    def user_committed(self, item_id: str) -> None:
        """A user audio turn was committed: it takes its place now; words come later."""
        self._add(item_id, "user", final=False)

    def user_transcript(self, item_id: str, text: str) -> None:
        entry = self._add(item_id, "user")
        entry.text, entry.final = text.strip(), True

    def assistant_delta(self, item_id: str, delta: str) -> None:
        entry = self._add(item_id, "assistant", final=False)
        if not entry.final:
            entry.text += delta

    def assistant_done(self, item_id: str, text: str) -> None:
        entry = self._add(item_id, "assistant")
        if entry.final and entry.text:
            return  # already cut to what was heard: the full text must not come back
        entry.text, entry.final = text, True

    def assistant_heard(self, item_id: str, heard_ms: int, audio_ms: int) -> None:
        """Playback of `item_id` stopped after `heard_ms` of its `audio_ms`: keep what was
        heard. Later transcript pieces of that item are not heard either."""
        entry = self._entries.get(item_id)
        if entry is None or entry.kind != "assistant":
            return
        entry.text, entry.final = heard_share(entry.text, heard_ms, audio_ms), True

    def call(self, call_id: str, name: str, arguments: str) -> None:
        key = f"call:{call_id}"
        self._add(key, "call", text=arguments, name=name, call_id=call_id)
        self._calls[call_id] = key

    def output(self, call_id: str, output: str) -> bool:
        """The call's output; False (and nothing kept) when it already has one."""
        if call_id in self._outputs:
            return False
        self._outputs.add(call_id)
        self._add(f"output:{call_id}", "output", text=output, call_id=call_id)
        return True

    # --- reading ----------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        """Grows with every new entry: `replay(after=...)` gives only what came since."""
        return self._seq

    @property
    def pending_calls(self) -> tuple[str, ...]:
        """Calls the model made whose output has not come yet."""
        return tuple(c for c in self._calls if c not in self._outputs)

    def last_user_unheard(self) -> bool:
        """The newest user turn was committed but its words never came (not transcribed)."""
        for entry in reversed(self._entries.values()):
            if entry.kind == "user":
                return not entry.final
        return False

    def unfinished_assistant(self) -> list[tuple[str, str]]:
        """(item id, words so far) of assistant turns whose transcript never completed (a
        drop cut them): the backend closes them so the history keeps what was said."""
        return [
            (key, e.text)
            for key, e in self._entries.items()
            if e.kind == "assistant" and not e.final
        ]

    def finish_assistant(self, item_id: str) -> None:
        entry = self._entries.get(item_id)
        if entry is not None:
            entry.final = True

    def replay(self, *, after: int = 0) -> list[dict[str, Any]]:
        """Items for `conversation.item.create`, oldest first: at most `max_items`, the
        newest. An output whose call is not replayed is left out with it (an output must
        follow its call)."""
        entries = sorted(
            (e for e in self._entries.values() if e.seq > after and _replayable(e)),
            key=lambda e: e.seq,
        )[-self.max_items :]
        calls = {e.call_id for e in entries if e.kind == "call"}
        out: list[dict[str, Any]] = []
        for e in entries:
            if e.kind == "output":
                if e.call_id in calls or (after and e.call_id in self._calls):
                    out.append(items.function_call_output_item(e.call_id, e.text))
            elif e.kind == "call":
                out.append(
                    {
                        "type": "function_call",
                        "call_id": e.call_id,
                        "name": e.name,
                        "arguments": e.text or "{}",
                    }
                )
            elif e.kind == "user":
                out.append(items.user_text_item(e.text))
            elif e.kind == "assistant":
                out.append(items.assistant_text_item(e.text))
            else:
                out.append(items.system_text_item(e.text))
        return out


def _replayable(e: _Entry) -> bool:
    if e.kind in ("call", "output"):
        return True
    return bool(e.text.strip())


def heard_share(text: str, heard_ms: int, audio_ms: int) -> str:
    """The words of `text` heard when playback stopped `heard_ms` into `audio_ms`: the same
    share of the characters, cut back to a whole word (speech runs at a steady pace within
    one utterance)."""
    if audio_ms <= 0 or heard_ms >= audio_ms:
        return text
    end = int(len(text) * max(0, heard_ms) / audio_ms)
    cut = text[:end]
    if cut and end < len(text) and cut[-1].isalnum() and text[end].isalnum():
        cut = cut[: max(cut.rfind(" "), 0)]
    return cut.rstrip(" ,;:-")
