"""Streaming one response, in the GA event order a live voice turn shows.

Audio message: `response.created` → `response.output_item.added` → `conversation.item.added` →
`response.content_part.added` (part type "audio") → interleaved
`response.output_audio_transcript.delta` / `response.output_audio.delta` →
`response.output_audio.done` → `response.output_audio_transcript.done` →
`response.content_part.done` → `response.output_item.done` → `conversation.item.done` →
`response.done` (with usage) → `rate_limits.updated`.
Text uses `response.output_text.*` with part type "text"; a function call streams
`response.function_call_arguments.delta`/`.done`. A cancelled response closes the open item
(status "incomplete") and ends with `response.done` status "cancelled".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from foreman.audio.formats import AudioFormat
from foreman.testing.mock_realtime import ids
from foreman.testing.mock_realtime.audio_io import chunks, fmt_of, speech, split_words
from foreman.testing.mock_realtime.scenario import Call, Reply, Say, Step, Text

if TYPE_CHECKING:
    from foreman.testing.mock_realtime.session import MockSession


class SessionGone(Exception):
    """The connection closed or was dropped; stop streaming quietly."""


@dataclass(slots=True, eq=False)
class ActiveResponse:
    """A response being streamed. `cancel(reason)` stops it at the next chunk boundary."""

    id: str
    in_conversation: bool
    params: dict[str, Any]
    reason: str | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    audio_ms: float = 0.0  # audio streamed, and when the first of it went out (loop time):
    first_audio_at: float | None = None  # the client's playback ends about then + audio_ms

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.wake.set()

    @property
    def cancelled(self) -> bool:
        return self.reason is not None


class Responder:
    """Streams `reply` for `resp` through `session`; owned by the session's response task."""

    def __init__(self, session: MockSession, resp: ActiveResponse, reply: Reply) -> None:
        self.s = session
        self.resp = resp
        self.reply = reply
        cfg = session.config
        p = resp.params
        self.modalities: list[str] = p.get("output_modalities") or cfg["output_modalities"]
        out = (p.get("audio") or {}).get("output") or {}
        self.out_format: dict[str, Any] = out.get("format") or cfg["audio"]["output"]["format"]
        if self.out_format.get("type") == "audio/pcm":
            self.out_format = {"type": "audio/pcm", "rate": 24000}
        self.voice = out.get("voice") or cfg["audio"]["output"]["voice"]
        self.fmt: AudioFormat = fmt_of(self.out_format)
        self.loop = asyncio.get_running_loop()
        self.t0: float | None = None  # pacing clock: set at the first delta
        self.sent_ms = 0.0
        self.text_tokens = 0
        self.audio_tokens = 0
        self.deltas = 0
        session.server.responses_started += 1
        self.stalls = session.server.responses_started <= session.faults.stall_responses

    # --- helpers ---------------------------------------------------------------------------

    def response_obj(self, status: str, details: dict[str, Any] | None) -> dict[str, Any]:
        cfg = self.s.config
        return {
            "object": "realtime.response",
            "id": self.resp.id,
            "status": status,
            "status_details": details,
            "output": [self.s.public_item(i) for i in self.resp.output]
            if status != "in_progress"
            else [],
            "conversation_id": self.s.conversation_id if self.resp.in_conversation else None,
            "output_modalities": list(self.modalities),
            "max_output_tokens": self.resp.params.get(
                "max_output_tokens", cfg.get("max_output_tokens", "inf")
            ),
            "audio": {"output": {"format": dict(self.out_format), "voice": self.voice}},
            "usage": None,
            "metadata": self.resp.params.get("metadata"),
        }

    async def send(self, event: dict[str, Any]) -> None:
        if not await self.s.send(event):
            raise SessionGone

    async def pause(self, seconds: float) -> None:
        """Wait, but wake at once on cancel."""
        if seconds <= 0:
            await asyncio.sleep(0)  # let the reader see a cancel or a barge-in
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.resp.wake.wait(), seconds)

    async def before_delta(self) -> None:
        """Apply the stall and delay faults and the pace before the next delta."""
        if self.stalls and self.deltas:
            await self.resp.wake.wait()  # fault: frozen mid-reply until cancelled or gone
            return
        self.deltas += 1
        delay = self.s.faults.delay_deltas_ms / 1000
        if delay:
            await self.pause(delay)
        if self.reply.pace == "burst":
            await self.pause(0)
            return
        if self.t0 is None:
            self.t0 = self.loop.time()
        due = self.t0 + (self.sent_ms / 1000) / float(self.reply.pace)
        await self.pause(due - self.loop.time())

    # --- the response ---------------------------------------------------------------------

    async def announce(self) -> bool:
        """Send `response.created` (before the reader takes the next client event, so the
        order on the wire is deterministic). False when the connection is gone."""
        return await self.s.send(
            {"type": "response.created", "response": self.response_obj("in_progress", None)}
        )

    async def run(self) -> None:
        """Stream the rest of the response; run as the response's task after `announce`."""
        try:
            await self._run()
        except SessionGone:
            pass
        except Exception as exc:  # a bug in the mock: report it, keep the session
            await self.s.internal_error(exc)
        finally:
            self.s.response_finished(self.resp)

    async def _run(self) -> None:
        if self.reply.delay_ms:
            await self.pause(self.reply.delay_ms / 1000)
        for index, step in enumerate(self.reply.steps):
            if self.resp.cancelled:
                break
            await self._step(index, step)
        if self.resp.cancelled:
            status, details = "cancelled", {"type": "cancelled", "reason": self.resp.reason}
        else:
            status, details = "completed", None
        done = self.response_obj(status, details)
        done["usage"] = self.usage()
        await self.send({"type": "response.done", "response": done})
        self.s.remaining_tokens -= done["usage"]["total_tokens"]
        await self.send(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {
                        "name": "tokens",
                        "limit": 15_000_000,
                        "remaining": self.s.remaining_tokens,
                        "reset_seconds": 0.001,
                    }
                ],
            }
        )
        if status == "completed" and self.resp.in_conversation:
            self.s.arm_idle_timeout(self.resp)

    def usage(self) -> dict[str, Any]:
        text_in = 40 + 8 * len(self.s.order)
        out_total = self.text_tokens + self.audio_tokens
        return {
            "total_tokens": text_in + out_total,
            "input_tokens": text_in,
            "output_tokens": out_total,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": 0,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {
                "text_tokens": self.text_tokens,
                "audio_tokens": self.audio_tokens,
            },
        }

    async def _step(self, index: int, step: Step) -> None:
        if isinstance(step, Call):
            await self._call(step)
        elif isinstance(step, Say) and "audio" in self.modalities:
            await self._audio_message(step.text)
        elif isinstance(step, Say | Text):
            await self._text_message(step.text)

    async def _open_item(self, item: dict[str, Any]) -> int:
        output_index = len(self.resp.output)
        self.resp.output.append(item)
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": self.resp.id,
                "output_index": output_index,
                "item": self.s.public_item(item),
            }
        )
        if self.resp.in_conversation:
            prev = self.s.add_item(item)
            await self.send(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": prev,
                    "item": self.s.public_item(item),
                }
            )
        return output_index

    async def _close_item(self, item: dict[str, Any], output_index: int) -> None:
        item["status"] = "incomplete" if self.resp.cancelled else "completed"
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": self.resp.id,
                "output_index": output_index,
                "item": self.s.public_item(item),
            }
        )
        if self.resp.in_conversation:
            await self.send(
                {
                    "type": "conversation.item.done",
                    "previous_item_id": self.s.previous_of(item["id"]),
                    "item": self.s.public_item(item),
                }
            )

    def _ref(self, item_id: str, output_index: int) -> dict[str, Any]:
        return {
            "response_id": self.resp.id,
            "item_id": item_id,
            "output_index": output_index,
            "content_index": 0,
        }

    async def _audio_message(self, text: str) -> None:
        item = _assistant_message()
        oi = await self._open_item(item)
        ref = self._ref(item["id"], oi)
        await self.send(
            {
                "type": "response.content_part.added",
                **ref,
                "part": {"type": "audio", "transcript": ""},
            }
        )
        # espeak-ng runs in a subprocess: keep it off the event loop (cached after the first time)
        audio = await asyncio.to_thread(speech, text, self.fmt.encoding)
        pieces = chunks(audio, self.fmt, self.reply.chunk_ms)
        words = split_words(text, len(pieces))
        transcript = ""
        sent = bytearray()
        self.s.audio_sent[item["id"]] = sent
        self.s.audio_fmt[item["id"]] = self.fmt
        self.s.voice_locked = True
        for piece, word in zip(pieces, words, strict=True):
            await self.before_delta()
            if self.resp.cancelled:
                break
            if word:
                await self.send(
                    {"type": "response.output_audio_transcript.delta", **ref, "delta": word}
                )
                transcript += word
            await self.send(
                {
                    "type": "response.output_audio.delta",
                    **ref,
                    "delta": base64.b64encode(piece).decode(),
                }
            )
            sent += piece
            self.sent_ms += self.fmt.ms_for_bytes(len(piece))
            self.resp.audio_ms += self.fmt.ms_for_bytes(len(piece))
            if self.resp.first_audio_at is None:
                self.resp.first_audio_at = self.loop.time()
        self.audio_tokens += int(self.fmt.ms_for_bytes(len(sent)) / 50) + 1
        self.text_tokens += len(transcript) // 4 + 1
        await self.send({"type": "response.output_audio.done", **ref})
        await self.send(
            {"type": "response.output_audio_transcript.done", **ref, "transcript": transcript}
        )
        await self.send(
            {
                "type": "response.content_part.done",
                **ref,
                "part": {"type": "audio", "transcript": transcript},
            }
        )
        item["content"] = [{"type": "output_audio", "transcript": transcript}]
        await self._close_item(item, oi)

    async def _text_message(self, text: str) -> None:
        item = _assistant_message()
        oi = await self._open_item(item)
        ref = self._ref(item["id"], oi)
        await self.send(
            {"type": "response.content_part.added", **ref, "part": {"type": "text", "text": ""}}
        )
        pieces = [w for w in split_words(text, max(1, len(text.split(" ")))) if w]
        out = ""
        for piece in pieces:
            await self.before_delta()
            if self.resp.cancelled:
                break
            await self.send({"type": "response.output_text.delta", **ref, "delta": piece})
            out += piece
        self.text_tokens += len(out) // 4 + 1
        await self.send({"type": "response.output_text.done", **ref, "text": out})
        await self.send(
            {"type": "response.content_part.done", **ref, "part": {"type": "text", "text": out}}
        )
        item["content"] = [{"type": "output_text", "text": out}]
        await self._close_item(item, oi)

    async def _call(self, step: Call) -> None:
        call_id = ids.call_id()
        item: dict[str, Any] = {
            "id": ids.item_id(),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": step.name,
            "call_id": call_id,
            "arguments": "",
        }
        oi = await self._open_item(item)
        ref = {
            "response_id": self.resp.id,
            "item_id": item["id"],
            "output_index": oi,
            "call_id": call_id,
        }
        args = step.arguments
        size = max(1, len(args) // 3 + 1)
        for start in range(0, len(args), size):
            await self.before_delta()
            if self.resp.cancelled:
                break
            piece = args[start : start + size]
            await self.send(
                {"type": "response.function_call_arguments.delta", **ref, "delta": piece}
            )
            item["arguments"] += piece
        if not self.resp.cancelled:
            await self.send(
                {
                    "type": "response.function_call_arguments.done",
                    **ref,
                    "name": step.name,
                    "arguments": args,
                }
            )
        self.text_tokens += len(args) // 4 + 1
        await self._close_item(item, oi)


def _assistant_message() -> dict[str, Any]:
    """An assistant message item as the service opens it: empty and in progress."""
    return {
        "id": ids.item_id(),
        "object": "realtime.item",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
