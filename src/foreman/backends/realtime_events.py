"""What the Realtime backend makes of the records `RealtimeClient.receive` returns: the
backend-neutral events of `backends.interface`, and what the backend must remember of them
(the user speaking or owed an answer, the output item open, what goes in the
`ConversationLedger`, a fatal error or the session's time limit).

Segments are Realtime output items (`item_id`, with the content index appended when it is
not 0); replies are responses, except out-of-band ones (`conversation_id` null), which are
not the assistant talking to the user. Functions of the backend, kept apart so the backend
(`openai_realtime`) stays a mover of frames; one table, shared by every session.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from foreman.backends import interface as b
from foreman.backends.realtime_open import error_line
from foreman.protocols.realtime import server_events as se
from foreman.protocols.realtime.errors import ErrorNotice
from foreman.protocols.realtime.state import FunctionCallReady
from foreman.tools.request import ToolRequest

if TYPE_CHECKING:
    from foreman.backends.openai_realtime import OpenAIRealtimeBackend

__all__ = ["HANDLERS", "parse_segment", "segment_of"]

log = logging.getLogger("foreman.backends.openai_realtime")
_Out = list[b.BackendEvent]


def segment_of(item_id: str, content_index: int) -> str:
    return item_id if content_index == 0 else f"{item_id}#{content_index}"


def parse_segment(segment: str) -> tuple[str, int]:
    item_id, sep, index = segment.rpartition("#")
    if sep and index.isdigit():
        return item_id, int(index)
    return segment, 0


def _speech_started(be: OpenAIRealtimeBackend, e: se.InputAudioBufferSpeechStarted) -> _Out:
    be._user_speaking = be._turn_open = True
    return [b.UserSpeechStarted(e.audio_start_ms)]


def _speech_stopped(be: OpenAIRealtimeBackend, e: se.InputAudioBufferSpeechStopped) -> _Out:
    be._user_speaking = False
    return [b.UserSpeechStopped(e.audio_end_ms)]


def _committed(be: OpenAIRealtimeBackend, e: se.InputAudioBufferCommitted) -> _Out:
    be.ledger.user_committed(e.item_id)
    be._turn_open = False
    be._turn_owed = be._auto_response
    return []


def _user_delta(be: OpenAIRealtimeBackend, e: se.InputAudioTranscriptionDelta) -> _Out:
    return [b.TranscriptSegment("user", e.delta, final=False)]


def _user_transcript(be: OpenAIRealtimeBackend, e: se.InputAudioTranscriptionCompleted) -> _Out:
    be.ledger.user_transcript(e.item_id, e.transcript)
    return [b.TranscriptSegment("user", e.transcript, final=True)]


def _assistant_delta(be: OpenAIRealtimeBackend, e: Any) -> _Out:
    be.ledger.assistant_delta(e.item_id, e.delta)
    return [b.TranscriptSegment("assistant", e.delta, final=False, reply=e.response_id)]


def _assistant_done(be: OpenAIRealtimeBackend, e: Any) -> _Out:
    text = e.transcript if isinstance(e, se.ResponseOutputAudioTranscriptDone) else e.text
    be.ledger.assistant_done(e.item_id, text)
    return [b.TranscriptSegment("assistant", text, final=True, reply=e.response_id)]


def _function_call(be: OpenAIRealtimeBackend, n: FunctionCallReady) -> _Out:
    be.ledger.call(n.call_id, n.name, n.arguments)
    return [ToolRequest(n.call_id, n.name, n.arguments)]


def _output_item(be: OpenAIRealtimeBackend, e: se.ResponseOutputItemAdded) -> _Out:
    item_id = e.item.get("id")
    if e.item.get("type") == "message" and isinstance(item_id, str):
        be._open_segment = item_id
    return []


def _audio_done(be: OpenAIRealtimeBackend, e: se.ResponseOutputAudioDone) -> _Out:
    be._open_segment = None
    return [b.SegmentEnded(segment_of(e.item_id, e.content_index))]


def _response_created(be: OpenAIRealtimeBackend, e: se.ResponseCreated) -> _Out:
    if e.response.get("conversation_id", "") is None:
        return []  # out of band: not the assistant talking to the user
    be._turn_owed = False
    return [b.ReplyStarted(e.response_id)]


def _audio_delta(be: OpenAIRealtimeBackend, e: se.ResponseOutputAudioDelta) -> _Out:
    try:
        audio = binascii.a2b_base64(e.delta)
    except (binascii.Error, ValueError):
        log.warning("< undecodable audio delta for %s dropped", e.item_id)
        return []
    return [b.AssistantAudio(audio, segment_of(e.item_id, e.content_index), e.response_id)]


def _response_done(be: OpenAIRealtimeBackend, e: se.ResponseDone) -> _Out:
    if e.response.get("conversation_id", "") is None:
        return []
    be._open_segment = None
    details = e.response.get("status_details") or {}
    reason = details.get("reason") if isinstance(details, dict) else None
    out: _Out = [b.ReplyEnded(e.response_id, e.status, reason)]
    if be._rt.idle:
        out.append(b.AssistantIdle())
    return out


def _error(be: OpenAIRealtimeBackend, n: ErrorNotice) -> _Out:
    if n.severity == "harmless":
        log.debug("< harmless error %s: %s", n.code, n.message)
        return []
    if n.code == "session_expired" and be.recovery.reconnect:
        log.info("< the model session reached its time limit; moving to a new one")
        be._expired = True  # the service closes next: reconnect with the conversation
        return []
    if n.severity == "fatal":
        be._error = error_line(n)
        return []
    log.warning("< error %s: %s", n.code, n.message)
    out: _Out = [b.BackendWarning(n.message, n.code)]
    if n.client_event_type == "response.create" and be._rt.idle:
        out.append(b.AssistantIdle())  # the reply that was asked for will not come
    return out


# Records the backend does not act on (session.updated, rate limits, ...) have no entry.
HANDLERS: dict[type, Callable[[OpenAIRealtimeBackend, Any], _Out]] = {
    se.InputAudioBufferSpeechStarted: _speech_started,
    se.InputAudioBufferSpeechStopped: _speech_stopped,
    se.InputAudioBufferCommitted: _committed,
    se.InputAudioTranscriptionDelta: _user_delta,
    se.InputAudioTranscriptionCompleted: _user_transcript,
    se.ResponseCreated: _response_created,
    se.ResponseDone: _response_done,
    se.ResponseOutputItemAdded: _output_item,
    se.ResponseOutputAudioDelta: _audio_delta,
    se.ResponseOutputAudioDone: _audio_done,
    se.ResponseOutputAudioTranscriptDelta: _assistant_delta,
    se.ResponseOutputAudioTranscriptDone: _assistant_done,
    se.ResponseOutputTextDelta: _assistant_delta,
    se.ResponseOutputTextDone: _assistant_done,
    FunctionCallReady: _function_call,
    ErrorNotice: _error,
}
