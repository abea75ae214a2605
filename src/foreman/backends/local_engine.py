"""The offline engine as a `VoiceBackend`: Silero VAD → Whisper → a local LLM → espeak-ng.

Everything runs on this machine. The caller's audio is converted to PCM16 at 16 kHz and fed
to Silero VAD (0.1 ms a frame, on the event loop); speech start is announced at once as
`UserSpeechStarted` (this engine has no server barge-in: the session flushes playback and
reports what was heard), and speech end, after `end_of_speech_ms` of silence, hands the
utterance to the conversation task. That task transcribes it (Whisper in a worker thread),
streams an answer from the LLM through the same Chat Completions client chat uses, cuts the
text into sentences as it comes and has a second task synthesize and send each sentence
while the model is still writing the next one. One reply runs at a time.

Tool calls come back either as real `tool_calls` or, from small models, as a bare JSON
object in the text (`foreman.backends.local_toolcall`): both become `ToolRequest`s, so the
session's dispatcher, gatekeeper and approvals decide them like any other backend's.

Barge-in: when the VAD hears the user start talking the running reply is cancelled (the LLM
stream is closed, no more sentences are synthesized). The engine knows which sentence's audio
spans which milliseconds of the reply's segment, so on `report_heard` it cuts its own record
of the reply to what was heard, and the next answer is written knowing only that was said.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from foreman.audio.convert import build_plan
from foreman.audio.formats import AudioFormat, Encoding
from foreman.audio.silero import SileroVad
from foreman.backends.interface import (
    AssistantAudio,
    AssistantIdle,
    BackendEvent,
    BackendOptions,
    BackendStatus,
    BackendWarning,
    Capabilities,
    Closed,
    NoteKind,
    Ready,
    ReplyEnded,
    ReplyStarted,
    SegmentEnded,
    TranscriptSegment,
    UserSpeechStarted,
    UserSpeechStopped,
)
from foreman.backends.local_runtime import LocalRuntime
from foreman.backends.local_text import SentenceSplitter
from foreman.backends.local_toolcall import fit_arguments, parse_tool_calls, reply_kind
from foreman.chat.llm import ChatCompletionsClient, Completion, LLMError, TextDelta, to_chat_tool
from foreman.chat.local_server import LocalChatClient
from foreman.tools.request import ToolRequest

__all__ = ["PCM16_16K", "LocalEngineBackend", "TurnTiming", "shared_prefix", "warm_shared_prefix"]

log = logging.getLogger(__name__)

PCM16_16K = AudioFormat(Encoding.PCM16, 16_000)
_RATE = PCM16_16K.sample_rate
_PREROLL_MS = 300  # audio kept before the VAD's start: its first frame lags the first word
_TAIL_MS = 150  # and after its stop, so a trailing consonant is not clipped
_CHUNK_MS = 100  # assistant audio is handed over in pieces of this length
_MAX_AUDIO_BACKLOG = 2000  # input chunks queued (~40 s of 20 ms frames) before dropping
_MESSAGES_KEPT = 40  # conversation messages sent to the model (the system prompt always)
_DEFAULT_GREETING = "Hello, how can I help?"
_SPOKEN_STYLE = (
    "Your answers are spoken aloud by a speech synthesizer: reply in one to three short "
    "plain sentences, with no lists, markdown or emoji."
)


@dataclass
class TurnTiming:
    """One answer's stages, in seconds from the end of the user's speech (or from the typed
    turn): what the benchmark reads."""

    stt_s: float | None = None
    first_token_s: float | None = None
    first_sentence_s: float | None = None
    first_audio_s: float | None = None
    started: float = field(default_factory=time.monotonic)

    def mark(self, stage: str) -> None:
        if getattr(self, stage) is None:
            setattr(self, stage, time.monotonic() - self.started)


@dataclass
class _Sentence:
    text: str
    start_ms: float
    end_ms: float


@dataclass
class _Reply:
    reply_id: str
    sentences: list[_Sentence] = field(default_factory=list)
    audio_ms: float = 0.0
    message: dict[str, Any] | None = None  # its entry in the conversation, cut on barge-in

    @property
    def spoken(self) -> str:
        return " ".join(s.text for s in self.sentences)

    def heard(self, heard_ms: int) -> str:
        """The text up to `heard_ms` of its audio: whole sentences, then the words of the
        one that was playing in proportion to how much of it played."""
        words: list[str] = []
        for s in self.sentences:
            if heard_ms >= s.end_ms:
                words.append(s.text)
                continue
            if heard_ms > s.start_ms:
                part = s.text.split()
                share = (heard_ms - s.start_ms) / max(1.0, s.end_ms - s.start_ms)
                words.append(" ".join(part[: int(len(part) * share)]))
            break
        return " ".join(w for w in words if w)


# ("speech", (pcm, timing)) | ("text", str) | ("note", str) | ("respond", None)
# | ("greet", str): fixed words spoken without the model
_Work = tuple[str, Any]


class LocalEngineBackend:
    """One conversation on the local engine. Built by the backend factory."""

    capabilities = Capabilities(
        server_barge_in=False,
        turn_based=True,
        needs_continuous_input=False,
        b64_passthrough=False,
        final_transcripts=True,
    )

    def __init__(self, options: BackendOptions, runtime: LocalRuntime) -> None:
        self.options = options
        self.runtime = runtime
        self.input_format = options.input_format
        self.output_format = options.output_format
        cfg = runtime.config
        self._id = f"local-{uuid.uuid4().hex[:12]}"
        self._events: asyncio.Queue[BackendEvent] = asyncio.Queue()
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._work: asyncio.Queue[_Work | None] = asyncio.Queue()
        self._to_16k = build_plan(self.input_format, PCM16_16K)
        self._vad: SileroVad | None = None
        self._buffer = bytearray()  # input since the utterance began (or the pre-roll)
        self._buffer_start = 0  # sample index of _buffer[0]
        self._samples_in = 0
        self._utterance_start: int | None = None
        self._vad_base = 0  # our sample index of the VAD's sample 0 (it restarts on reset)
        self._max_utterance = int(cfg.max_utterance_s * _RATE)
        self._messages: list[dict[str, Any]] = []
        self._system = self._system_prompt(options)
        self._shared_first = False  # set in start(): see _prompt
        self._tools = [to_chat_tool(t) for t in options.tools]
        self._schemas = {t["name"]: t.get("parameters") for t in options.tools if "name" in t}
        self._reply_ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._reply_task: asyncio.Task[None] | None = None
        self._warm_task: asyncio.Task[None] | None = None
        self._recent: dict[str, _Reply] = {}  # replies report_heard may still cut
        self._pending_calls: set[str] = set()
        self._answer_owed = False
        self._busy = False
        self._closed = False
        self.timings: list[TurnTiming] = []
        self.warm_seconds: float | None = None
        self.counters = {"utterances": 0, "replies": 0, "barge_ins": 0, "dropped_audio": 0}

    @staticmethod
    def _system_prompt(options: BackendOptions, *, style: bool = True) -> str:
        parts = [options.instructions, _SPOKEN_STYLE if style else ""]
        parts += [text for role, text in options.history if role == "system"]
        return "\n\n".join(p for p in parts if p)

    # --- VoiceBackend ----------------------------------------------------------------------
    async def start(self) -> None:
        await self.runtime.ready()
        self._shared_first = isinstance(self.runtime.llm, LocalChatClient)
        cfg = self.runtime.config
        self._vad = SileroVad(
            _RATE,
            threshold=cfg.vad_threshold,
            min_silence_ms=cfg.end_of_speech_ms,
            model_path=self.runtime.vad_model,
        )
        for role, text in self.options.history:
            if role in ("user", "assistant"):
                self._messages.append({"role": role, "content": text})
        self._emit(Ready(provider_session_id=self._id, model=self.runtime.llm_name))

    async def run(self, tg: asyncio.TaskGroup) -> None:
        tg.create_task(self._listen(), name=f"{self._id}:listen")
        tg.create_task(self._converse(), name=f"{self._id}:converse")
        if self.options.greeting is not None:
            # Fixed words, spoken at once: a model's greeting would keep the caller waiting
            # for the whole prompt to be read.
            self._enqueue(("greet", self.options.greeting_text or _DEFAULT_GREETING))
        if self.runtime.config.warm_prompt:
            self._warm_task = tg.create_task(self._warm(), name=f"{self._id}:warm")

    async def events(self) -> AsyncIterator[BackendEvent]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, Closed):
                return

    async def push_audio(self, audio: bytes) -> None:
        if self._closed:
            return
        if self._audio.qsize() >= _MAX_AUDIO_BACKLOG:
            self.counters["dropped_audio"] += 1  # the listener fell behind: never block
            return
        self._audio.put_nowait(audio)

    async def push_audio_b64(self, audio_b64: str) -> None:
        await self.push_audio(base64.b64decode(audio_b64))

    async def report_heard(self, segment: str | None, heard_ms: int | None) -> None:
        self._cancel_reply()
        reply = self._recent.get(segment or "")
        if reply is None or heard_ms is None:
            return
        # The record of what the assistant said ends where the user stopped hearing it.
        heard = reply.heard(heard_ms)
        if reply.message is not None:
            reply.message["content"] = heard
        log.debug("%s: %s heard up to %d ms: %r", self._id, segment, heard_ms, heard)

    async def submit_tool_result(
        self, call_id: str, output: str, *, continue_conversation: bool = True
    ) -> None:
        if call_id not in self._pending_calls:
            self._emit(BackendWarning(f"a result for unknown tool call {call_id} was ignored"))
            return
        self._pending_calls.discard(call_id)
        self._messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
        self._answer_owed = self._answer_owed or continue_conversation
        if not self._pending_calls and self._answer_owed:
            self._answer_owed = False
            self._enqueue(("respond", None))

    async def add_note(self, kind: NoteKind, text: str) -> None:
        if kind == "context":
            self._messages.append({"role": "user", "content": f"(Context, not said: {text})"})
        elif kind == "instruction":
            self._enqueue(("note", f"(Instruction: {text})"))
        else:
            self._enqueue(("note", f"(Tell the user: {text})"))

    async def send_user_text(self, text: str) -> None:
        self._enqueue(("text", text))

    async def end_user_turn(self) -> bool:
        if self._utterance_start is not None:
            self._end_utterance(self._samples_in)
            self._reset_vad()
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_reply()
        if self._warm_task is not None:
            self._warm_task.cancel()
        self._audio.put_nowait(None)
        self._work.put_nowait(None)
        self._emit(Closed())

    def status(self) -> BackendStatus:
        return BackendStatus(
            backend="local",
            model=self.runtime.llm_name,
            endpoint_host=self.runtime.llm_where,
            provider_session_id=self._id,
            phase="replying" if self._reply_task is not None else "listening",
            counters=dict(self.counters),
            usage={"components": self.runtime.components()},
        )

    # --- listening: VAD and utterances -----------------------------------------------------
    async def _listen(self) -> None:
        while (chunk := await self._audio.get()) is not None:
            pcm = self._to_16k.convert(chunk)
            if pcm:
                self._hear(pcm)

    def _hear(self, pcm: bytes) -> None:
        assert self._vad is not None
        self._buffer += pcm
        self._samples_in += len(pcm) // 2
        for event in self._vad.process(pcm):
            sample = self._vad_base + event.sample
            if event.kind == "start" and self._utterance_start is None:
                preroll = _PREROLL_MS * _RATE // 1000
                self._utterance_start = max(self._buffer_start, sample - preroll)
                self._emit(UserSpeechStarted(at_ms=sample * 1000 // _RATE))
                self.counters["barge_ins"] += int(self._reply_task is not None)
                self._cancel_reply()  # the user talks: the assistant stops
            elif event.kind == "stop" and self._utterance_start is not None:
                self._emit(UserSpeechStopped(at_ms=sample * 1000 // _RATE))
                self._end_utterance(sample + _TAIL_MS * _RATE // 1000)
        if self._utterance_start is None:
            keep = _PREROLL_MS * _RATE // 1000 * 2
            excess = len(self._buffer) - keep
            if excess > 0:
                del self._buffer[:excess]
                self._buffer_start += excess // 2
        elif self._samples_in - self._utterance_start >= self._max_utterance:
            self._end_utterance(self._samples_in)
            self._reset_vad()

    def _reset_vad(self) -> None:
        """A forced end of turn: the VAD starts afresh (its sample 0 is our next sample)."""
        assert self._vad is not None
        self._vad.reset()
        self._vad_base = self._samples_in

    def _end_utterance(self, end_sample: int) -> None:
        assert self._utterance_start is not None
        start = (self._utterance_start - self._buffer_start) * 2
        end = (min(end_sample, self._samples_in) - self._buffer_start) * 2
        pcm = bytes(self._buffer[start:end])
        del self._buffer[:end]
        self._buffer_start += end // 2
        self._utterance_start = None
        self.counters["utterances"] += 1
        self._enqueue(("speech", (pcm, TurnTiming())))

    # --- conversing: one reply at a time ----------------------------------------------------
    def _enqueue(self, work: _Work) -> None:
        if not self._closed:
            self._work.put_nowait(work)

    async def _converse(self) -> None:
        while (work := await self._work.get()) is not None:
            kind, payload = work
            timing = TurnTiming()
            if kind == "speech":
                pcm, timing = payload
                text = (await self.runtime.transcriber.transcribe(pcm)).strip()
                timing.mark("stt_s")
                if not any(c.isalnum() for c in text):
                    self._maybe_idle()
                    continue
                self._emit(TranscriptSegment("user", text, True))
                self._messages.append({"role": "user", "content": text})
            elif kind in ("text", "note"):
                self._messages.append({"role": "user", "content": payload})
            if kind == "greet":
                reply = self._reply(timing, fixed=payload)
            else:
                self.timings.append(timing)
                reply = self._reply(timing)
            task = asyncio.get_running_loop().create_task(reply)
            self._reply_task = task
            try:
                await asyncio.wait({task})  # a barge-in cancels the reply, not this loop
            finally:
                if not task.done():
                    task.cancel()
                self._reply_task = None
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure  # a bug, not a model error: it ends the session with its reason
            self._maybe_idle()

    def _maybe_idle(self) -> None:
        if self._busy and self._reply_task is None and self._work.empty():
            self._busy = False
            self._emit(AssistantIdle())

    def _cancel_reply(self) -> None:
        if self._reply_task is not None and not self._reply_task.done():
            self._reply_task.cancel()

    async def _reply(self, timing: TurnTiming, fixed: str | None = None) -> None:
        """One reply: the model's answer, or the `fixed` words (no model call)."""
        reply = _Reply(f"{self._id}-r{next(self._reply_ids)}")
        self._busy = True
        self.counters["replies"] += 1
        self._emit(ReplyStarted(reply.reply_id))
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = asyncio.get_running_loop().create_task(self._speak(reply, sentences, timing))
        calls: list[ToolRequest] = []
        status = "completed"
        try:
            if fixed is None:
                calls = await self._generate(reply, sentences, timing)
            else:
                sentences.put_nowait(fixed)
            sentences.put_nowait(None)
            await speaker
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        except LLMError as exc:
            status = "failed"
            self._emit(BackendWarning(str(exc), "llm"))
        finally:
            if not speaker.done():
                speaker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await speaker
            self._finish(reply, status, calls)

    async def _generate(
        self, reply: _Reply, sentences: asyncio.Queue[str | None], timing: TurnTiming
    ) -> list[ToolRequest]:
        splitter = SentenceSplitter()
        parts: list[str] = []
        kind: str | None = None
        completion: Completion | None = None

        def say(delta: str) -> None:
            self._emit(TranscriptSegment("assistant", delta, False, reply=reply.reply_id))
            for sentence in splitter.feed(delta):
                timing.mark("first_sentence_s")
                sentences.put_nowait(sentence)

        if self._warm_task is not None:
            # The model is reading this prompt already: wait for it rather than have a
            # second slot read it again from scratch.
            await asyncio.wait({self._warm_task})
        async for event in self.runtime.llm.stream(self._prompt(), tools=self._tools):
            if isinstance(event, TextDelta):
                timing.mark("first_token_s")
                parts.append(event.text)
                if kind == "speech":
                    say(event.text)
                elif (kind := reply_kind("".join(parts))) == "speech":
                    say("".join(parts))  # what was held while it might have been a call
            else:
                completion = event
        text = "".join(parts)
        calls = [
            ToolRequest(c.call_id or self._new_call_id(), c.name, c.arguments)
            for c in (completion.tool_calls if completion is not None else ())
        ]
        if not calls and kind != "speech":
            calls = [
                ToolRequest(
                    self._new_call_id(),
                    p.name,
                    _json(fit_arguments(p.arguments, self._schemas.get(p.name))),
                )
                for p in parse_tool_calls(text)
            ]
            if not calls and text.strip():
                say(text)  # it looked like a call but was not one: it is said
        for sentence in splitter.flush():
            timing.mark("first_sentence_s")
            sentences.put_nowait(sentence)
        return calls

    def _prompt(self) -> list[dict[str, Any]]:
        """What the model is sent: the system prompt, then the recent conversation. The
        system prompt and the tools come first and never change within a session, so
        llama.cpp's prompt cache reuses them from one turn to the next.

        On the in-process model (a ChatML template, which renders the tools right after
        the first system message) the first message is the spoken style alone and the
        session's own instructions (a call's caller and number) follow as a second system
        message: the style and the tool list, most of the prompt, are then the same for
        every call with the same tools, and a later call finds them in the cache too."""
        recent = self._messages[-_MESSAGES_KEPT:]
        if self._shared_first:
            own = self._system_prompt(self.options, style=False)
            head, _ = shared_prefix(())
            if own:
                head.append({"role": "system", "content": own})
            return [*head, *recent]
        return [{"role": "system", "content": self._system}, *recent]

    async def _warm(self) -> None:
        """Have the model read the session's prompt prefix (system prompt + tools) once,
        for a one-token answer, so the first real turn finds it in the prompt cache."""
        started = time.monotonic()
        try:
            await self.runtime.llm.complete(self._prompt(), tools=self._tools, max_tokens=1)
        except LLMError as exc:
            log.info("%s: the prompt warm-up failed (the first turn reads it): %s", self._id, exc)
            return
        self.warm_seconds = time.monotonic() - started
        log.debug("%s: prompt read in %.2f s", self._id, self.warm_seconds)

    def _new_call_id(self) -> str:
        return f"{self._id}-call{next(self._call_ids)}"

    async def _speak(
        self, reply: _Reply, sentences: asyncio.Queue[str | None], timing: TurnTiming
    ) -> None:
        synthesizer = self.runtime.synthesizer
        assert synthesizer is not None
        chunk = self.output_format.bytes_for_ms(_CHUNK_MS)
        while (sentence := await sentences.get()) is not None:
            pcm, rate = await asyncio.to_thread(synthesizer.synthesize, sentence)
            plan = build_plan(AudioFormat(Encoding.PCM16, rate), self.output_format)
            audio = plan.convert(pcm) + plan.flush()
            if not audio:
                continue
            timing.mark("first_audio_s")
            ms = self.output_format.ms_for_bytes(len(audio))
            reply.sentences.append(_Sentence(sentence, reply.audio_ms, reply.audio_ms + ms))
            reply.audio_ms += ms
            for i in range(0, len(audio), chunk):
                self._emit(AssistantAudio(audio[i : i + chunk], reply.reply_id, reply.reply_id))

    def _finish(self, reply: _Reply, status: str, calls: list[ToolRequest]) -> None:
        """A reply's closing events, in the order the session needs them: its final text,
        its segment's end, its tool calls (before the reply ends: a text turn waits for
        their outputs), then the end."""
        spoken = reply.spoken
        if spoken:
            self._emit(TranscriptSegment("assistant", spoken, True, reply=reply.reply_id))
        if reply.audio_ms:
            self._emit(SegmentEnded(reply.reply_id))
        if calls:
            self._messages.append(
                {
                    "role": "assistant",
                    "content": spoken or None,
                    "tool_calls": [
                        {
                            "id": c.call_id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in calls
                    ],
                }
            )
        elif spoken:
            reply.message = {"role": "assistant", "content": spoken}
            self._messages.append(reply.message)
        self._recent[reply.reply_id] = reply
        while len(self._recent) > 4:
            self._recent.pop(next(iter(self._recent)))
        for call in calls:
            self._pending_calls.add(call.call_id)
            self._emit(call)
        self._emit(ReplyEnded(reply.reply_id, status))

    def _emit(self, event: BackendEvent) -> None:
        self._events.put_nowait(event)


def shared_prefix(
    tools: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first system message and the tools every session on the in-process model with
    these `tools` sends first (`LocalEngineBackend._prompt`)."""
    return [{"role": "system", "content": _SPOKEN_STYLE}], [to_chat_tool(t) for t in tools]


def warm_shared_prefix(runtime: LocalRuntime, tools: list[Mapping[str, Any]]) -> float | None:
    """Blocking (a worker thread at `foreman serve`'s start, after the models loaded): have
    the in-process model read the shared prefix for `tools` once, a one-token answer, so the
    first call finds it in llama.cpp's prompt cache. Seconds taken, or None if not done."""
    llm = runtime.loaded_llm
    if not isinstance(llm, LocalChatClient) or not llm.server.running:
        return None
    messages, chat_tools = shared_prefix(tools)
    started = time.monotonic()

    async def once() -> None:
        # A client of this thread's own loop: the shared one belongs to the server's loop.
        client = ChatCompletionsClient(
            base_url=llm.server.base_url, model=llm.model, api_key=llm.server.api_key
        )
        try:
            await client.complete(messages, tools=chat_tools, max_tokens=1)
        finally:
            await client.aclose()

    try:
        asyncio.run(once())
    except LLMError as exc:
        log.info("offline engine: the prompt warm-up failed: %s", exc)
        return None
    return time.monotonic() - started


def _json(value: Mapping[str, Any]) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
