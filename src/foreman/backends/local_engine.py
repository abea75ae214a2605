"""The offline engine as a `VoiceBackend`: Silero VAD → Whisper → a local LLM → espeak-ng.

Everything runs on this machine. The caller's audio is converted to PCM16 at 16 kHz and fed
to Silero VAD (0.1 ms a frame, on the event loop) through a `Listener`
(`foreman.backends.local_listen`); speech start is announced at once as `UserSpeechStarted`
(this engine has no server barge-in: the session flushes playback and reports what was
heard), and speech end, after `end_of_speech_ms` of silence, hands the utterance to the
conversation task. Whisper (in a worker thread) starts on it earlier, `early_transcribe_ms`
into the pause, when no other transcription is running: if the pause ends the turn the text
is ready sooner, if the caller goes on it is dropped. The conversation task streams an
answer from the LLM through the same Chat Completions client chat uses, cuts the text into
sentences as it comes and has a second task synthesize and send each sentence while the
model is still writing the next one. One reply runs at a time.

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
from collections.abc import AsyncIterator
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
from foreman.backends.local_listen import (
    EarlyUtterance,
    FinalUtterance,
    Listener,
    Span,
    SpeechStart,
    SpeechStop,
)
from foreman.backends.local_prompt import ModelMessages
from foreman.backends.local_reply import ReplyRecord, SpokenSentence, TurnTiming
from foreman.backends.local_runtime import LocalRuntime
from foreman.backends.local_text import SentenceSplitter
from foreman.backends.local_toolcall import AnswerSorter
from foreman.chat.llm import Completion, LLMError, TextDelta, to_chat_tool
from foreman.chat.local_server import LocalChatClient
from foreman.tools.request import ToolRequest

__all__ = ["PCM16_16K", "LocalEngineBackend", "TurnTiming"]

log = logging.getLogger(__name__)

PCM16_16K = AudioFormat(Encoding.PCM16, 16_000)
_RATE = PCM16_16K.sample_rate
_CHUNK_MS = 100  # assistant audio is handed over in pieces of this length
_MAX_AUDIO_BACKLOG = 2000  # input chunks queued (~40 s of 20 ms frames) before dropping
_DEFAULT_GREETING = "Hello, how can I help?"


# ("speech", (pcm, timing, early transcript or None)) | ("text", str) | ("note", str)
# | ("respond", None) | ("greet", str): fixed words spoken without the model
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
        self._id = f"local-{uuid.uuid4().hex[:12]}"
        self._events: asyncio.Queue[BackendEvent] = asyncio.Queue()
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._work: asyncio.Queue[_Work | None] = asyncio.Queue()
        self._to_16k = build_plan(self.input_format, PCM16_16K)
        self._listener: Listener | None = None
        self._early: tuple[Span, asyncio.Task[str]] | None = None  # transcribing in a pause
        self._chat = ModelMessages(options, clock=runtime.config.clock_note)
        self._tools = [to_chat_tool(t) for t in options.tools]
        self._schemas = {t["name"]: t.get("parameters") for t in options.tools if "name" in t}
        self._reply_ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._reply_task: asyncio.Task[None] | None = None
        self._warm_task: asyncio.Task[None] | None = None
        self._recent: dict[str, ReplyRecord] = {}  # replies report_heard may still cut
        self._answer_owed = False
        self._busy = False
        self._closed = False
        self.timings: list[TurnTiming] = []
        self.warm_seconds: float | None = None
        kinds = (
            "utterances",
            "replies",
            "barge_ins",
            "dropped_audio",
            "early_transcripts_used",
        )
        self.counters = dict.fromkeys(kinds, 0)

    # --- VoiceBackend ----------------------------------------------------------------------
    async def start(self) -> None:
        await self.runtime.ready()
        self._chat.shared_first = isinstance(self.runtime.llm, LocalChatClient)
        cfg = self.runtime.config
        vad = SileroVad(
            _RATE,
            threshold=cfg.vad_threshold,
            min_silence_ms=cfg.end_of_speech_ms,
            model_path=self.runtime.vad_model,
        )
        early_ms = cfg.early_transcribe_ms if cfg.early_transcribe_ms < cfg.end_of_speech_ms else 0
        self._listener = Listener(vad, max_utterance_s=cfg.max_utterance_s, early_ms=early_ms)
        for role, text in self.options.history:
            if role in ("user", "assistant"):
                self._chat.messages.append({"role": role, "content": text})
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
        if not self._chat.calls.answer(call_id, output):
            self._emit(BackendWarning(f"a result for unknown tool call {call_id} was ignored"))
            return
        self._answer_owed = self._answer_owed or continue_conversation
        if not self._chat.calls.pending and self._answer_owed:
            self._answer_owed = False
            self._enqueue(("respond", None))

    async def add_note(self, kind: NoteKind, text: str) -> None:
        if kind == "context":
            self._chat.messages.append({"role": "user", "content": f"(Context, not said: {text})"})
        elif kind == "instruction":
            self._enqueue(("note", f"(Instruction: {text})"))
        else:
            self._enqueue(("note", f"(Tell the user: {text})"))

    async def send_user_text(self, text: str) -> None:
        self._enqueue(("text", text))

    async def end_user_turn(self) -> bool:
        if self._listener is not None and (utterance := self._listener.end_turn()) is not None:
            self._utterance(utterance)
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_reply()
        if self._warm_task is not None:
            self._warm_task.cancel()
        self._drop_early()
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
        assert self._listener is not None
        for event in self._listener.feed(pcm):
            if isinstance(event, SpeechStart):
                self._emit(UserSpeechStarted(at_ms=event.at_sample * 1000 // _RATE))
                self.counters["barge_ins"] += int(self._reply_task is not None)
                self._cancel_reply()  # the user talks: the assistant stops
            elif isinstance(event, SpeechStop):
                self._emit(UserSpeechStopped(at_ms=event.at_sample * 1000 // _RATE))
            elif isinstance(event, EarlyUtterance):
                self._transcribe_early(event)
            else:
                self._utterance(event)

    def _transcribe_early(self, early: EarlyUtterance) -> None:
        """Start on the utterance while the pause may still turn out to be mid-sentence; not
        when any transcription is running (another call's must not wait for a guess)."""
        if self.runtime.transcribing:
            return
        self._drop_early()
        task = asyncio.get_running_loop().create_task(self.runtime.transcribe(early.pcm))
        task.add_done_callback(_retrieve)
        self._early = (early.span, task)

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early[1].cancel()  # its worker thread finishes; the text is not used
            self._early = None

    def _utterance(self, utterance: FinalUtterance) -> None:
        early = None
        if self._early is not None and self._early[0] == utterance.span:
            early = self._early[1]
            self._early = None
        self._drop_early()
        self.counters["utterances"] += 1
        self._enqueue(("speech", (utterance.pcm, TurnTiming(), early)))

    # --- conversing: one reply at a time ----------------------------------------------------
    def _enqueue(self, work: _Work) -> None:
        if not self._closed:
            self._work.put_nowait(work)

    async def _converse(self) -> None:
        while (work := await self._work.get()) is not None:
            kind, payload = work
            timing = TurnTiming()
            if kind == "speech":
                pcm, timing, early = payload
                if early is not None:
                    timing.early_stt = True
                    self.counters["early_transcripts_used"] += 1
                    text = (await early).strip()
                else:
                    text = (await self.runtime.transcribe(pcm)).strip()
                timing.mark("stt_s")
                if not any(c.isalnum() for c in text):
                    self._maybe_idle()
                    continue
                self._emit(TranscriptSegment("user", text, True))
                self._chat.user_turn(text)
            elif kind in ("text", "note"):
                self._chat.user_turn(payload)
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
        reply = ReplyRecord(f"{self._id}-r{next(self._reply_ids)}")
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
        self, reply: ReplyRecord, sentences: asyncio.Queue[str | None], timing: TurnTiming
    ) -> list[ToolRequest]:
        splitter = SentenceSplitter()
        sorter = AnswerSorter(self._schemas, self._new_call_id)
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
        async for event in self.runtime.llm.stream(self._chat.prompt(), tools=self._tools):
            if isinstance(event, TextDelta):
                timing.mark("first_token_s")
                if speech := sorter.feed(event.text):
                    say(speech)
            else:
                completion = event
        calls, rest = sorter.finish(completion)
        if rest:
            say(rest)
        for sentence in splitter.flush():
            timing.mark("first_sentence_s")
            sentences.put_nowait(sentence)
        return calls

    async def _warm(self) -> None:
        """Have the model read the session's prompt prefix (system prompt + tools) once,
        for a one-token answer, so the first real turn finds it in the prompt cache."""
        started = time.monotonic()
        self._chat.tell_the_time()
        try:
            await self.runtime.llm.complete(self._chat.prompt(), tools=self._tools, max_tokens=1)
        except LLMError as exc:
            log.info("%s: the prompt warm-up failed (the first turn reads it): %s", self._id, exc)
            return
        self.warm_seconds = time.monotonic() - started
        log.debug("%s: prompt read in %.2f s", self._id, self.warm_seconds)

    def _new_call_id(self) -> str:
        return f"{self._id}-call{next(self._call_ids)}"

    async def _speak(
        self, reply: ReplyRecord, sentences: asyncio.Queue[str | None], timing: TurnTiming
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
            reply.sentences.append(SpokenSentence(sentence, reply.audio_ms, reply.audio_ms + ms))
            reply.audio_ms += ms
            for i in range(0, len(audio), chunk):
                self._emit(AssistantAudio(audio[i : i + chunk], reply.reply_id, reply.reply_id))

    def _finish(self, reply: ReplyRecord, status: str, calls: list[ToolRequest]) -> None:
        """A reply's closing events, in the order the session needs them: its final text,
        its segment's end, its tool calls (before the reply ends: a text turn waits for
        their outputs), then the end."""
        spoken = reply.spoken
        if spoken:
            self._emit(TranscriptSegment("assistant", spoken, True, reply=reply.reply_id))
        if reply.audio_ms:
            self._emit(SegmentEnded(reply.reply_id))
        if calls:
            self._chat.calls.opened(
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
            self._chat.messages.append(reply.message)
        self._recent[reply.reply_id] = reply
        while len(self._recent) > 4:
            self._recent.pop(next(iter(self._recent)))
        for call in calls:
            self._emit(call)
        self._emit(ReplyEnded(reply.reply_id, status))

    def _emit(self, event: BackendEvent) -> None:
        self._events.put_nowait(event)


def _retrieve(task: asyncio.Task[str]) -> None:
    """An early transcription nobody awaited: its failure was not needed (the turn's own
    transcription reports it), but must not be logged as never retrieved."""
    if not task.cancelled():
        task.exception()
