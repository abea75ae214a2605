"""Where a session's words go: transcript pieces become whole utterances (`UtteranceAssembler`,
pure); each whole utterance is written to the bus and the history hook, and the user's also
go to the tool layer's spoken confirmation.

The history hook is told every turn directly (the session and its tool calls and text turns
call it for theirs); for an assistant utterance cut by a barge-in, it also gets where the
user stopped hearing it and how long its audio was, so its text can be cut there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from foreman.backends import interface as b
from foreman.bus import EventBus
from foreman.clock import Clock
from foreman.endpoints import interface as e
from foreman.events import TranscriptLine
from foreman.session.transcripts import Role, Utterance, UtteranceAssembler

__all__ = ["HistoryHook", "TranscriptWriter"]


class HistoryHook(Protocol):
    """Where a session's turns are recorded (foreman.chat.history.SessionHistoryWriter).
    Called on the session's path: every method returns at once."""

    def typed(self, text: str) -> None: ...

    def utterance(self, role: str, text: str, heard_ms: int | None, audio_ms: int | None) -> None:
        """A whole utterance; for the assistant after a barge-in, `heard_ms` is where the
        user stopped hearing it and `audio_ms` how long its audio was (None: unknown)."""
        ...

    def tool_call(self, call_id: str, name: str, arguments: str) -> None: ...

    def tool_result(self, call_id: str, output: str) -> None: ...

    def ended(self, reason: str) -> None: ...


class TranscriptWriter:
    """One session's utterances, from pieces to where they are written.

    `segment` and `segment_bytes` count the assistant's audio of the segment playing now,
    all of it (played or dropped after a cut): how long the utterance was, to place the cut
    in its text. The session's reader updates them itself, in the audio hot path, only
    when there is a history to write to.
    """

    __slots__ = (
        "_assembler", "_backend", "_bus", "_clock", "_due", "_history", "_last_cut",
        "_on_user_utterance", "_session_id", "segment", "segment_bytes",
    )  # fmt: skip

    def __init__(
        self,
        session_id: str,
        bus: EventBus,
        clock: Clock,
        backend: b.VoiceBackend,
        *,
        gap_s: float,
        history: HistoryHook | None,
        on_user_utterance: Callable[[str], None] | None,
    ) -> None:
        self._session_id = session_id
        self._bus = bus
        self._clock = clock
        self._backend = backend
        self._history = history
        self._on_user_utterance = on_user_utterance
        self._assembler = UtteranceAssembler(gap_s, finals=backend.capabilities.final_transcripts)
        self._due: asyncio.Event | None = None  # only with the closer task
        self._last_cut: e.Heard | None = None
        self.segment = ""
        self.segment_bytes = 0

    def cut(self, heard: e.Heard) -> None:
        """A barge-in stopped playback at `heard`: the next assistant utterance is cut there."""
        self._last_cut = heard

    def piece(self, ev: b.TranscriptSegment) -> None:
        for utterance in self._assembler.piece(
            ev.role, ev.text, final=ev.final, now=self._clock.monotonic()
        ):
            self.write(utterance)
        # Wake the closer only for pieces that can close for silence (no final will come).
        if not ev.final and self._due is not None:
            self._due.set()

    def close(self, role: Role) -> None:
        """`role` finished speaking (a reply ended on a backend without final texts)."""
        for utterance in self._assembler.close(role):
            self.write(utterance)

    def flush(self) -> None:
        """The session ends: whatever was being said is written as it stands."""
        for utterance in self._assembler.flush():
            self.write(utterance)

    def write(self, utterance: Utterance) -> None:
        heard = audio_ms = None
        if utterance.role == "assistant" and self._last_cut is not None:
            cut, self._last_cut = self._last_cut, None
            heard = cut.ms
            if cut.segment == self.segment and self.segment_bytes:
                audio_ms = int(self._backend.output_format.ms_for_bytes(self.segment_bytes))
        self._bus.publish(TranscriptLine(self._session_id, utterance.role, utterance.text, heard))
        if self._history is not None:
            self._history.utterance(utterance.role, utterance.text, heard, audio_ms)
        if utterance.role == "user" and self._on_user_utterance is not None:
            self._on_user_utterance(utterance.text)

    async def close_by_silence(self) -> None:
        """Close utterances of speakers whose backend never sends a final text."""
        self._due = due = asyncio.Event()
        assembler = self._assembler
        while True:
            deadline = assembler.deadline()
            if deadline is None:
                due.clear()
                await due.wait()
                continue
            delay = deadline - self._clock.monotonic()
            if delay > 0:
                due.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(due.wait(), delay)
                continue
            for utterance in assembler.due(self._clock.monotonic()):
                self.write(utterance)
