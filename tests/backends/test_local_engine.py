"""The offline engine as a backend, driven directly: real speech in (espeak-ng), Silero VAD,
Whisper, espeak-ng out; the LLM is the Chat Completions stand-in so its words are known."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from foreman.audio.formats import AudioFormat, Encoding
from foreman.backends import interface as b
from foreman.backends import local_prompt
from foreman.backends.factory import make_backend_factory
from foreman.backends.local_engine import PCM16_16K, LocalEngineBackend
from foreman.backends.local_prompt import clock_note, shared_prefix, warm_shared_prefix
from foreman.backends.local_reply import ReplyRecord, SpokenSentence
from foreman.backends.local_runtime import LocalRuntime
from foreman.config import Settings, settings_from_dict
from foreman.exceptions import BackendError
from foreman.testing.chat_standin import Answer, ChatStandIn, Rule, When
from foreman.testing.speech import speak, trim_silence
from foreman.testing.timeouts import unit

FIRST = "The first sentence is here."
STORY = FIRST + " The second sentence is a little longer than the first one. " * 6
FRAME = PCM16_16K.bytes_for_ms(20)
SCHEMA_ECHOING_CALL = '{"name": "get_time", "arguments": {"type": "object"}}'
GET_TIME = {
    "type": "function",
    "name": "get_time",
    "description": "The time.",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


class Driven:
    """A started engine whose events are collected; `wait(pred)` waits on them."""

    def __init__(self, backend: LocalEngineBackend) -> None:
        self.backend = backend
        self.events: list[b.BackendEvent] = []
        self._changed = asyncio.Condition()

    async def collect(self) -> None:
        async for event in self.backend.events():
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def wait(self, pred: Callable[[], Any], seconds: float = 60) -> None:
        async with asyncio.timeout(unit(seconds)), self._changed:
            await self._changed.wait_for(pred)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def say(self, pcm16_16k: bytes, silence_ms: int = 900) -> None:
        audio = pcm16_16k + bytes(PCM16_16K.bytes_for_ms(silence_ms))
        for i in range(0, len(audio), FRAME):
            await self.backend.push_audio(audio[i : i + FRAME])


def _options(**kw: Any) -> b.BackendOptions:
    return b.BackendOptions(
        model="local",
        endpoint="",
        voice="",
        instructions="You are a test assistant.",
        input_format=PCM16_16K,
        output_format=AudioFormat(Encoding.PCM16, 16_000),
        **kw,
    )


@contextlib.asynccontextmanager
async def _started(
    llm: ChatStandIn,
    models: Path,
    options: b.BackendOptions,
    *,
    warm_prompt: bool,
    clock_note: bool = True,
) -> AsyncIterator[Driven]:
    local = {"warm_prompt": warm_prompt, "clock_note": clock_note}
    settings = settings_from_dict({"chat": {"base_url": llm.base_url}, "local": local})
    backend = LocalEngineBackend(options, LocalRuntime(settings, cache_dir=models))
    await backend.start()
    driven = Driven(backend)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(driven.collect())
        await backend.run(tg)
        yield driven
        await backend.close()


@pytest.fixture
async def engine(models: Path) -> AsyncIterator[tuple[Driven, ChatStandIn]]:
    rules = [
        Rule(When.user("story"), Answer.say(STORY, delay_ms=40)),
        Rule(When.user("time"), Answer.say(SCHEMA_ECHOING_CALL)),
        Rule(When.tool_result("get_time"), Answer.say("It is noon.")),
    ]
    # No warm-up request here: these tests count the turns' requests.
    async with (
        ChatStandIn(rules) as llm,
        _started(llm, models, _options(tools=(GET_TIME,)), warm_prompt=False) as driven,
    ):
        yield driven, llm


async def test_the_greeting_is_spoken_without_asking_the_model(models: Path) -> None:
    async with (
        ChatStandIn([]) as llm,
        _started(
            llm,
            models,
            _options(greeting="Greet Ada by name.", greeting_text="Hello Ada, how can I help?"),
            warm_prompt=False,
        ) as driven,
    ):
        await driven.wait(lambda: driven.of(b.AssistantIdle))
        said = [t for t in driven.of(b.TranscriptSegment) if t.role == "assistant" and t.final]
        assert [t.text for t in said] == ["Hello Ada, how can I help?"]
        audio = b"".join(a.audio for a in driven.of(b.AssistantAudio))
        assert PCM16_16K.ms_for_bytes(len(audio)) > 800  # espeak-ng said the words
        assert driven.of(b.ReplyEnded)[0].status == "completed"
        assert llm.requests == []  # not one model call for it
        # The greeting is the assistant's words in what the model reads next.
        await driven.backend.send_user_text("Hello.")
        (request,) = await llm.wait_for_requests(1)
        assistant, clock, user = request["messages"][1:]
        assert assistant == {"role": "assistant", "content": "Hello Ada, how can I help?"}
        assert user == {"role": "user", "content": "Hello."}
        # Told the time just before the question (a small model makes it up otherwise).
        assert clock["role"] == "system"
        assert_the_clock_is_now(clock["content"])


def assert_the_clock_is_now(note: str) -> None:
    match = re.fullmatch(r"It is now \d{1,2}:\d\d [AP]M \((\d\d):(\d\d) \S+\) on (.+)\.", note)
    assert match is not None, note
    now = datetime.now().astimezone()
    told = now.replace(hour=int(match[1]), minute=int(match[2]), second=0, microsecond=0)
    assert abs((now - told).total_seconds()) < 120, (note, now)
    assert match[3] == f"{now:%A}, {now.day} {now:%B %Y}"


async def test_the_clock_is_told_once_a_minute_and_stays_where_it_was_told(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [datetime(2026, 12, 2, 14, 5, 10).astimezone()]
    monkeypatch.setattr(local_prompt, "_now", lambda: now[0])
    async with (
        ChatStandIn([]) as llm,
        _started(llm, models, _options(), warm_prompt=False) as driven,
    ):
        for n, question in enumerate(["What time is it?", "And now?"], start=1):
            await driven.backend.send_user_text(question)
            await llm.wait_for_requests(n)
            await driven.wait(lambda n=n: len(driven.of(b.AssistantIdle)) >= n)
        now[0] += timedelta(minutes=1)
        await driven.backend.send_user_text("And now?")
        (first, second, third) = await llm.wait_for_requests(3)
    notes = [m["content"] for m in third["messages"] if m["role"] == "system"][1:]
    assert notes == [clock_note(now[0] - timedelta(minutes=1)), clock_note(now[0])]
    # Each request is the one before it and more: the prompt cache serves every turn.
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assert third["messages"][: len(second["messages"])] == second["messages"]


async def test_without_the_clock_note_the_model_is_not_told_the_time(models: Path) -> None:
    async with (
        ChatStandIn([]) as llm,
        _started(llm, models, _options(), warm_prompt=False, clock_note=False) as driven,
    ):
        await driven.backend.send_user_text("What time is it?")
        (request,) = await llm.wait_for_requests(1)
        assert [m["role"] for m in request["messages"]] == ["system", "user"]


async def test_a_greeting_without_words_says_the_short_default(models: Path) -> None:
    async with (
        ChatStandIn([]) as llm,
        _started(llm, models, _options(greeting=""), warm_prompt=False) as driven,
    ):
        await driven.wait(lambda: driven.of(b.AssistantIdle))
        said = [t.text for t in driven.of(b.TranscriptSegment) if t.final]
        assert said == ["Hello, how can I help?"] and llm.requests == []


async def test_the_warm_up_reads_the_same_prefix_the_turn_sends(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = datetime(2026, 12, 2, 14, 5, 10).astimezone()
    monkeypatch.setattr(local_prompt, "_now", lambda: at)  # one minute: one clock note
    async with (
        ChatStandIn([]) as llm,
        _started(llm, models, _options(tools=(GET_TIME,)), warm_prompt=True) as driven,
    ):
        (warm,) = await llm.wait_for_requests(1)
        assert warm["max_tokens"] == 1 and not warm.get("stream")
        await driven.backend.send_user_text("What is the time?")
        turn = (await llm.wait_for_requests(2))[1]
        assert turn.get("stream") is True
        # Byte for byte: the same system prompt and tools, then the turn's own messages.
        assert json.dumps(warm["tools"]) == json.dumps(turn["tools"])
        assert json.dumps(warm["messages"]) == json.dumps(turn["messages"][: len(warm["messages"])])
        assert warm["messages"][0]["role"] == "system"
        assert warm["messages"][-1] == {"role": "system", "content": clock_note(at)}
        assert driven.backend.warm_seconds is not None


async def test_speech_is_heard_answered_and_spoken(engine: tuple[Driven, ChatStandIn]) -> None:
    driven, llm = engine
    await driven.say(speak("Please turn on the kitchen lights.", 16_000))
    await driven.wait(lambda: driven.of(b.AssistantIdle))
    kinds = [type(e).__name__ for e in driven.events]
    assert kinds.index("UserSpeechStarted") < kinds.index("UserSpeechStopped")
    user = [t for t in driven.of(b.TranscriptSegment) if t.role == "user"]
    assert len(user) == 1 and user[0].final
    assert "kitchen lights" in user[0].text.lower()
    # The stand-in's default answer echoes what it was sent: the transcript reached the LLM.
    said = [t for t in driven.of(b.TranscriptSegment) if t.role == "assistant" and t.final]
    assert said and "kitchen lights" in said[0].text.lower()
    audio = b"".join(a.audio for a in driven.of(b.AssistantAudio))
    assert PCM16_16K.ms_for_bytes(len(audio)) > 500
    assert driven.of(b.ReplyEnded)[0].status == "completed"
    timing = driven.backend.timings[-1]
    assert timing.stt_s is not None and timing.first_audio_s is not None
    assert timing.stt_s <= timing.first_token_s <= timing.first_audio_s  # type: ignore[operator]
    assert len(llm.requests) == 1


async def test_a_bare_json_tool_call_becomes_a_tool_request(
    engine: tuple[Driven, ChatStandIn],
) -> None:
    driven, llm = engine
    await driven.backend.send_user_text("what time is it")
    await driven.wait(lambda: driven.of(b.ToolRequest))
    (call,) = driven.of(b.ToolRequest)
    # The schema's echo is dropped; nothing of the JSON is spoken.
    assert call.name == "get_time" and call.arguments == "{}"
    assert not driven.of(b.AssistantAudio)
    assert not [t for t in driven.of(b.TranscriptSegment) if t.final]
    kinds = [type(e).__name__ for e in driven.events]
    assert kinds.index("ToolRequest") < kinds.index("ReplyEnded")  # a text turn waits for it
    await driven.backend.submit_tool_result(call.call_id, '{"time": "12:00"}')
    await driven.wait(lambda: len(driven.of(b.ReplyEnded)) == 2)
    said = [t for t in driven.of(b.TranscriptSegment) if t.role == "assistant" and t.final]
    assert [t.text for t in said] == ["It is noon."]
    second = llm.requests[-1]["messages"]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "get_time"
    result = {"role": "tool", "tool_call_id": call.call_id, "content": '{"time": "12:00"}'}
    assert second[-1] == result


async def test_barge_in_cuts_the_reply_and_what_it_remembers(
    engine: tuple[Driven, ChatStandIn],
) -> None:
    driven, llm = engine
    await driven.backend.send_user_text("tell me a story")
    await driven.wait(lambda: driven.of(b.AssistantAudio))
    reply = driven.of(b.ReplyStarted)[0].reply
    await driven.say(speak("Stop please.", 16_000))
    await driven.wait(lambda: driven.of(b.ReplyEnded))
    assert driven.of(b.UserSpeechStarted)
    (ended,) = driven.of(b.ReplyEnded)
    assert ended == b.ReplyEnded(reply, "cancelled")
    # No audio of the reply after it ended, and not the whole story was said.
    after = driven.events[driven.events.index(ended) :]
    assert not [e for e in after if isinstance(e, b.AssistantAudio) and e.reply == reply]
    final = [t for t in driven.of(b.TranscriptSegment) if t.role == "assistant" and t.final]
    assert final and final[0].text.startswith(FIRST) and len(final[0].text) < len(STORY.strip())
    # The session reports that only the first sentence was heard: the engine's record of
    # the reply, which the next request carries, ends there.
    pcm, rate = driven.backend.runtime.synthesizer.synthesize(FIRST)  # type: ignore[union-attr]
    first_ms = len(pcm) // 2 * 1000 // rate
    await driven.backend.report_heard(reply, first_ms + 5)
    await driven.wait(lambda: len(llm.requests) == 2)
    assistant = [m for m in llm.requests[-1]["messages"] if m["role"] == "assistant"]
    assert assistant == [{"role": "assistant", "content": FIRST}]
    assert "stop" in llm.requests[-1]["messages"][-1]["content"].lower()


async def test_speech_to_text_starts_in_the_pause_and_a_resumed_sentence_is_heard_whole(
    engine: tuple[Driven, ChatStandIn],
) -> None:
    driven, llm = engine
    first = trim_silence(speak("Please call my sister", 16_000))
    second = trim_silence(speak("and tell her I am late.", 16_000))
    await driven.say(first + bytes(PCM16_16K.bytes_for_ms(300)) + second)
    await driven.wait(lambda: driven.of(b.AssistantIdle))
    user = [t.text.lower() for t in driven.of(b.TranscriptSegment) if t.role == "user"]
    assert len(user) == 1 and "sister" in user[0] and "late" in user[0]
    # The guess made in the mid-sentence pause was dropped; the one made in the final pause
    # was the turn's transcript.
    assert driven.backend.counters["early_transcripts_used"] == 1
    assert driven.backend.timings[-1].early_stt
    assert "late" in llm.requests[-1]["messages"][-1]["content"].lower()


async def test_with_early_transcription_off_the_turn_is_transcribed_at_its_end(
    models: Path,
) -> None:
    async with ChatStandIn([]) as llm:
        settings = settings_from_dict(
            {
                "chat": {"base_url": llm.base_url},
                "local": {"warm_prompt": False, "early_transcribe_ms": 0},
            }
        )
        backend = LocalEngineBackend(_options(), LocalRuntime(settings, cache_dir=models))
        await backend.start()
        driven = Driven(backend)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(driven.collect())
            await backend.run(tg)
            await driven.say(speak("Please turn on the kitchen lights.", 16_000))
            await driven.wait(lambda: driven.of(b.AssistantIdle))
            await backend.close()
    assert backend.counters["early_transcripts_used"] == 0
    assert not backend.timings[-1].early_stt
    assert "kitchen" in llm.requests[-1]["messages"][-1]["content"].lower()


def test_heard_text_follows_the_sentences_audio() -> None:
    sentences = [
        SpokenSentence("One two.", 0, 1000),
        SpokenSentence("Three four five six.", 1000, 3000),
    ]
    reply = ReplyRecord("r", sentences)
    assert reply.heard(0) == ""
    assert reply.heard(1000) == "One two."
    assert reply.heard(2000) == "One two. Three four"
    assert reply.heard(5000) == "One two. Three four five six."


async def test_a_missing_model_is_one_line_naming_the_fix(models: Path, tmp_path: Path) -> None:
    runtime = LocalRuntime(settings_from_dict({"local": {"llm": "nonesuch"}}), cache_dir=models)
    with pytest.raises(BackendError) as caught:
        await runtime.ready()
    assert str(caught.value) == (
        "local engine: [local] llm = 'nonesuch' is neither a packaged model "
        "(qwen2.5-coder-0.5b, smollm2-135m) nor the path of a .gguf file"
    )
    gguf = tmp_path / "absent.gguf"
    runtime = LocalRuntime(settings_from_dict({"local": {"llm": str(gguf)}}), cache_dir=models)
    with pytest.raises(BackendError, match=f"the model file {gguf} does not exist"):
        await runtime.ready()


def test_the_engine_is_the_default_without_a_key() -> None:
    from pydantic import SecretStr

    def factory(settings: Settings) -> Any:
        return make_backend_factory(settings)

    assert hasattr(factory(Settings()), "runtime")  # no key: the offline engine
    assert hasattr(factory(settings_from_dict({"realtime": {"api": "live"}})), "runtime")
    keyed = Settings().realtime.model_copy(update={"api_key": SecretStr("sk-test")})
    assert not hasattr(factory(Settings().replace(realtime=keyed)), "runtime")
    forced = settings_from_dict({"local": {"use": "always"}})
    assert hasattr(factory(forced.replace(realtime=keyed)), "runtime")
    never = settings_from_dict({"local": {"use": "never"}})
    assert not hasattr(factory(never), "runtime")


async def test_push_to_talk_release_ends_the_turn_and_listening_goes_on(
    engine: tuple[Driven, ChatStandIn],
) -> None:
    driven, _ = engine

    def heard() -> list[str]:
        return [t.text.lower() for t in driven.of(b.TranscriptSegment) if t.role == "user"]

    # Shorter than the end-of-speech silence: only the release ends this turn.
    await driven.say(speak("Please open the garage door.", 16_000), silence_ms=100)
    await driven.wait(lambda: driven.of(b.UserSpeechStarted))
    assert not driven.of(b.UserSpeechStopped)
    assert await driven.backend.end_user_turn()
    await driven.wait(heard)
    assert "garage door" in heard()[0]
    # The VAD started afresh; the next utterance is cut from the right place in the input.
    await driven.say(speak("Now close the kitchen window.", 16_000))
    await driven.wait(lambda: len(heard()) == 2)
    assert "window" in heard()[1] and "garage" not in heard()[1]


def test_warming_loads_the_models_or_logs_one_line(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    runtime = LocalRuntime(settings_from_dict({"local": {"llm": "smollm2-135m"}}), cache_dir=models)
    assert runtime.warm_sync()
    assert runtime.transcriber.load_seconds is not None
    assert "offline engine: models loaded" in caplog.text
    # And the in-process model reads the calls' shared prefix once.
    assert warm_shared_prefix(runtime, [GET_TIME]) is not None
    broken = LocalRuntime(settings_from_dict({"local": {"llm": "nonesuch"}}), cache_dir=models)
    assert not broken.warm_sync()  # never raises: the first session reports it again
    assert "offline engine: [local] llm = 'nonesuch' is neither" in caplog.text


def test_rt_probe_status_lists_the_engines_components() -> None:
    from foreman.client_types import RealtimeStatus
    from foreman.probe import format_status

    status = RealtimeStatus(
        active=True,
        mode="voice",
        model="qwen2.5-coder-0.5b",
        backend="local",
        components={
            "stt": {"name": "faster-whisper int8", "model": "/cache/whisper", "load_s": 0.46},
            "llm": {"name": "qwen", "runs": "in-process llama.cpp (http://127.0.0.1:5/v1)"},
            "tts": {"name": "espeak-ng en-us"},
        },
    )
    assert format_status(status)[1:] == [
        "  stt: faster-whisper int8 (/cache/whisper), loaded in 0.46 s",
        "  llm: qwen (in-process llama.cpp (http://127.0.0.1:5/v1))",
        "  tts: espeak-ng en-us",
    ]


def test_on_the_in_process_model_calls_share_the_first_system_message(models: Path) -> None:
    from foreman.chat.local_server import LocalChatClient, local_model_spec, shared_server

    settings = Settings()
    llm = LocalChatClient(shared_server(local_model_spec(settings, models)))
    runtime = LocalRuntime(settings, cache_dir=models, llm=llm)
    prompts = []
    for caller in ("+15550100001", "+15550100002"):
        options = dataclasses.replace(_options(), instructions=f"A call from {caller}.")
        backend = LocalEngineBackend(options, runtime)
        backend._chat.shared_first = isinstance(runtime.llm, LocalChatClient)  # as start() does
        prompts.append(backend._chat.prompt())
    first, second = prompts
    # The first message (after which the template writes the tools) is the same for both;
    # each call's own instructions follow it.
    assert first[0] == second[0] and first[0]["role"] == "system"
    # What `foreman serve` warms at start is exactly that message, with the session's tools.
    assert [first[0]] == shared_prefix([GET_TIME])[0]
    assert "+1555" not in first[0]["content"]
    assert first[1] == {"role": "system", "content": "A call from +15550100001."}
    assert second[1] == {"role": "system", "content": "A call from +15550100002."}
