"""End to end on the offline engine: fake Twilio caller <-> foreman (uvicorn) <-> Silero VAD,
Whisper, a local LLM and espeak-ng, with no network and no key. The caller speaks real
synthesized speech (flite's voices where the words are checked: they are closer to a person's
than espeak-ng's); the LLM is either the packaged small model in-process (wiring) or the Chat
Completions stand-in (so its tool call and its words are known)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from twilio_app import ACCOUNT, OWNER, PUBLIC, TOKEN

from foreman.api.app import create_app
from foreman.backends.factory import make_local_factory
from foreman.bus import Subscription
from foreman.config import IdentityConfig, Settings, settings_from_dict
from foreman.testing.chat_standin import Answer, ChatStandIn, Rule, When
from foreman.testing.fake_call import CallTimings, converse
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.server import serve_app
from foreman.testing.speech import CALLER_SENTENCE, speak, word_error_rate
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn
from foreman.testing.voices import flite_speech, have_flite

pytestmark = pytest.mark.e2e

TIMINGS = CallTimings(greeting_s=unit(60), answer_s=unit(60), quiet_s=1.0, longest_s=unit(30))
LONG_ANSWER = (
    "Tomorrow will be sunny in the morning. There will be a light breeze from the west. "
    "Clouds will come in the afternoon. There is a chance of rain in the evening after six. "
    "The night will be cool and clear."
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


needs_flite = pytest.mark.skipif(not have_flite(), reason="flite is not installed")


class Stack:
    def __init__(
        self, base: str, events: Subscription, settings: Settings, rest: TwilioRestStandIn
    ) -> None:
        self.base, self.events, self.settings, self.rest = base, events, settings, rest

    def caller(self) -> FakeTwilioCaller:
        return FakeTwilioCaller(
            server_http=self.base,
            public_url=PUBLIC,
            auth_token=TOKEN,
            account_sid=ACCOUNT,
            from_=OWNER,
            continuous_silence=True,
        )

    async def event(self, kind: str, pred: Any = lambda d: True, timeout: float = 30) -> Any:  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
        async with asyncio.timeout(unit(timeout)):
            while True:
                ev = await self.events.get()
                if ev.kind == kind and pred(ev.data):
                    return ev.data


@contextlib.asynccontextmanager
async def local_stack(models: Path, tmp: Path, **sections: Any) -> AsyncIterator[Stack]:
    async with TwilioRestStandIn(ACCOUNT, TOKEN) as rest:
        s = settings_from_dict(
            {
                "storage": {"db_path": str(tmp / "foreman.db")},
                "history": {"summary": "digest"},
                **sections,
            }
        )
        s = s.replace(
            twilio=s.twilio.model_copy(
                update={
                    "account_sid": ACCOUNT,
                    "auth_token": SecretStr(TOKEN),
                    "public_url": PUBLIC,
                    "from_number": "+15550009999",
                    "api_base": rest.base_url,
                }
            ),
            identity=IdentityConfig(owner_numbers=[OWNER]),
        )
        app = create_app(s, backend_factory=make_local_factory(s, cache_dir=models))
        events = app.state.bus.subscribe(maxsize=100_000)
        async with serve_app(app) as base:
            yield Stack(base, events, s, rest)
        if app.state.twilio.rest is not None:
            await app.state.twilio.rest.aclose()


@needs_flite
async def test_a_call_asking_the_time_is_answered_through_get_time(
    models: Path, tmp_path: Path
) -> None:
    rules = [
        Rule(When.user("Instruction"), Answer.say("Hello, Foreman here.")),
        Rule(When.user("time"), Answer.say('{"name": "get_time", "arguments": {}}')),
        Rule(When.tool_result("get_time"), Answer.say("It is time for lunch.")),
    ]
    async with (
        ChatStandIn(rules) as llm,
        local_stack(models, tmp_path, chat={"base_url": llm.base_url}) as stack,
    ):
        question = flite_speech("What time is it?", "slt", 8000)
        result = await converse(stack.caller(), question, TIMINGS)
        assert result.greeted and result.answered and result.objections == ()
        said = await stack.event("session.transcript", lambda d: d["role"] == "user")
        assert word_error_rate("what time is it", said["text"]) <= 0.25, said
        decided = await stack.event("tool.call", lambda d: d["tool"] == "get_time")
        assert decided["decision"] == "allow"
        assert (await stack.event("tool.result"))["ok"] is True
        answer = await stack.event(
            "session.transcript", lambda d: d["role"] == "assistant" and "lunch" in d["text"]
        )
        assert answer["text"] == "It is time for lunch."
        # The model got the tool's real output: today's date in ISO form.
        tool_message = llm.requests[-1]["messages"][-1]
        assert tool_message["role"] == "tool" and re.search(
            r"20\d\d-\d\d-\d\d", tool_message["content"]
        )


@needs_flite
async def test_a_call_on_the_packaged_small_model(models: Path, tmp_path: Path) -> None:
    # Short answers: the small model rambles, and the caller hangs up once it is quiet.
    small = {"llm": "smollm2-135m", "llm_max_tokens": 40}
    async with local_stack(models, tmp_path, local=small) as stack:
        result = await converse(stack.caller(), flite_speech(CALLER_SENTENCE, "rms", 8000), TIMINGS)
        assert result.greeted and result.answered and result.objections == ()
        assert result.heard_s > 1.0
        said = await stack.event("session.transcript", lambda d: d["role"] == "user")
        assert word_error_rate(CALLER_SENTENCE, said["text"]) <= 0.34, said
        answer = await stack.event("session.transcript", lambda d: d["role"] == "assistant")
        assert answer["text"].strip()


async def test_barge_in_on_a_call_stores_what_was_heard(models: Path, tmp_path: Path) -> None:
    rules = [
        Rule(When.user("Instruction"), Answer.say("Hi.")),
        Rule(When.user(), Answer.say(LONG_ANSWER, delay_ms=30)),
    ]
    async with (
        ChatStandIn(rules) as llm,
        local_stack(models, tmp_path, chat={"base_url": llm.base_url}) as stack,
    ):
        caller = stack.caller()
        async with caller:
            await caller.dial()
            await stack.event("session.transcript", lambda d: d["role"] == "assistant")
            await caller.wait_until(lambda: caller.played_ms > 0 and not caller.playing, unit(30))
            await caller.play_speech(speak("What is the weather tomorrow?", 8000))
            await caller.send_silence(600)
            await caller.wait_until(lambda: caller.playing, unit(60))
            await caller.wait_played_ms(int(caller.played_ms) + 1500, timeout=unit(30))
            await caller.play_speech(speak("Wait, stop.", 8000))
            cut = await stack.event("session.barge_in")
            line = await stack.event(
                "session.transcript", lambda d: d["role"] == "assistant" and d["heard_ms"]
            )
            assert line["heard_ms"] == cut["heard_ms"] and line["text"].startswith("Tomorrow")
            await caller.send_silence(800)
            await llm.wait_for_requests(3, timeout=unit(60))
        # What the model is told it said ends where the caller stopped hearing it.
        said = [m["content"] for m in llm.requests[2]["messages"] if m["role"] == "assistant"]
        assert said[-1] and LONG_ANSWER.startswith(said[-1].rstrip("."))
        assert len(said[-1]) < len(LONG_ANSWER)


async def test_a_text_turn_on_the_small_model_and_its_status(models: Path, tmp_path: Path) -> None:
    settings = settings_from_dict(
        {
            "local": {"llm": "smollm2-135m"},
            "storage": {"db_path": str(tmp_path / "f.db")},
            "history": {"summary": "digest"},
        }
    )
    app = create_app(settings, backend_factory=make_local_factory(settings, cache_dir=models))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(120)) as api:
        assert (await api.post("/api/realtime/start")).status_code == 200
        # The 135M model samples, and about one answer in twelve is a run of emoji: nothing
        # to say, so no audio. An answer with words must be spoken; ask again until one
        # comes (three emoji answers in a row: about one run in two thousand).
        for _ in range(3):
            async with api.stream(
                "POST", "/api/realtime/say", json={"text": "Say hello to me.", "audio": True}
            ) as resp:
                pieces = [json.loads(line) async for line in resp.aiter_lines() if line]
            deltas = "".join(str(p.get("delta", "")) for p in pieces)
            audio = b"".join(base64.b64decode(str(p["audio"])) for p in pieces if "audio" in p)
            assert pieces[-1]["done"] and pieces[-1]["status"] == "completed"
            assert deltas.strip() and pieces[-1]["transcript"] == deltas
            if any(c.isalnum() for c in deltas):
                break
            assert audio == b"", deltas  # nothing speakable is not spoken
        assert any(c.isalnum() for c in deltas), deltas
        assert len(audio) > 24_000  # at least half a second of PCM16 24 kHz speech
        status = (await api.get("/api/realtime/status")).json()
        assert status["backend"] == "local" and status["model"] == "smollm2-135m"
        assert "components" not in status["usage"]
        components = status["components"]
        assert components["llm"]["runs"].startswith("in-process llama.cpp (http://127.0.0.1:")
        assert components["llm"]["load_s"] > 0 and components["stt"]["load_s"] > 0
        assert components["stt"]["model"].endswith("faster-whisper-base-1.0.0")
        assert components["stt"]["window"] == "fitted"
        assert components["tts"]["name"].startswith(("espeak-ng", "flite"))
        assert components["vad"]["name"] == "silero (onnxruntime)"
        await api.post("/api/realtime/stop")


@needs_flite
async def test_a_text_that_needs_approval_is_sent_once_approved_over_http(
    models: Path, tmp_path: Path
) -> None:
    sms = {"to": "+15550101234", "body": "Running ten minutes late"}
    rules = [
        Rule(When.user("Instruction"), Answer.say("Hello, Foreman here.")),
        # The engine passes the session's status note on as a user turn in brackets.
        Rule(When.user("waiting for the owner's approval"), Answer.say("That needs approval.")),
        Rule(When.user("message"), Answer.say(json.dumps({"name": "send_sms", "arguments": sms}))),
        Rule(When.tool_result("send_sms"), Answer.say("Your text has been sent.")),
    ]

    def requests_with(pred: Any) -> list[dict[str, Any]]:
        return [r for r in llm.requests if any(pred(m) for m in r["messages"])]

    def is_pending_note(m: dict[str, Any]) -> bool:
        return m["role"] == "user" and "waiting for the owner's approval" in str(m["content"])

    async with (
        ChatStandIn(rules) as llm,
        local_stack(models, tmp_path, chat={"base_url": llm.base_url}) as stack,
        httpx.AsyncClient(base_url=stack.base, timeout=unit(20)) as api,
    ):
        caller = stack.caller()
        async with caller:
            await caller.dial()
            await stack.event("session.transcript", lambda d: d["role"] == "assistant")
            await caller.wait_until(lambda: caller.played_ms > 0 and not caller.playing, unit(30))
            ask = flite_speech("Please send a message to my brother.", "slt", 8000)
            await caller.play_speech(ask)
            await caller.send_silence(800)
            prompt = await stack.event("approval.prompt", timeout=60)
            assert prompt["tool"] == "send_sms" and prompt["arguments"] == sms
            listed = (await api.get("/api/approval/prompt")).json()["prompts"]
            assert [p["id"] for p in listed] == [prompt["id"]]
            # While it waits, the model is told it has NOT happened and speaks meanwhile;
            # no tool output reaches it and nothing is sent.
            await stack.event(
                "session.transcript",
                lambda d: d["role"] == "assistant" and d["text"] == "That needs approval.",
            )
            (note,) = [m for r in requests_with(is_pending_note) for m in r["messages"][-1:]]
            assert "It has NOT been done yet" in note["content"]
            assert not requests_with(lambda m: m["role"] == "tool")
            assert stack.rest.messages == []

            answered = await api.post(
                "/api/approval/answer", json={"id": prompt["id"], "approve": True}
            )
            assert answered.status_code == 200
            assert answered.json()["approval"]["state"] == "approved"
            assert (await stack.event("tool.result"))["ok"] is True
            await stack.event(
                "session.transcript",
                lambda d: d["role"] == "assistant" and d["text"] == "Your text has been sent.",
            )
        (sent,) = stack.rest.messages
        assert sent["to"] == sms["to"] and sent["body"] == sms["body"]
        (last,) = requests_with(lambda m: m["role"] == "tool")
        tool_output = json.loads(last["messages"][-1]["content"])
        assert tool_output["ok"] is True
